#!/usr/bin/env bash
# test_proxy_h2.sh -- HTTP/2 request bodies without a length, through the shipped lighttpd
# proxy recipe (and Apache's mod_http2 in front of the --listen daemon)
#
# An HTTP/2 client may send a body with no content-length: DATA frames until END_STREAM. curl
# does so for an upload read from a pipe (-T -; checked: its trace shows no content-length
# sent). The front servers speak cleartext HTTP/2 (curl --http2-prior-knowledge): lighttpd
# 1.4.69 with the shipped recipe (HTTP/2 is on by default), and Apache with the shipped recipe
# plus mod_http2 (Protocols h2c; under mpm_event, as mod_http2 does nothing under prefork), in
# front of one lighttpd + echo.cgi backend. For each:
#   uploads   a 3-byte, a 1 MiB and a 20 MiB body of random bytes, sent over HTTP/2 without a
#             length, answered 200 over HTTP/2, and the backend read exactly the client's
#             bytes (its length and SHA-256 equal the client's); the 1 MiB one also comes back
#             byte for byte (echoed). Through lighttpd with PUT: lighttpd 1.4.69 itself answers
#             an HTTP/2 POST without content-length 411 (checked: logged by lighttpd, and not
#             counted by the filter, which never sees it); through Apache with POST.
#   counted   an admitted HTTP/2 upload is counted once: RateLimit's r drops by exactly 1 for
#             it (a GCRA rule of 100/366d: nothing comes back during the test)
# No temp file left in the upload dirs; no sanitizer report in the filter's logs.
set -euo pipefail
NAME=test_proxy_h2
source "$(dirname "$0")/lib/lib.sh"
source "$(dirname "$0")/lib/apache.sh"
need lighttpd curl perl sha256sum
curl --version | grep -qw HTTP2 || { echo "FAIL: curl has no HTTP/2 support"; exit 1; }

B=$T/B; mkdir -p "$B"
BP=$(pick_port)
start_backend "$B" "$BP"
PROXY="proxy: { backend = \"http://127.0.0.1:$BP\"; connect_timeout_ms = 1000; timeout_ms = 20000; };"
LIMIT=100/366d # GCRA: one unit comes back every 3.66 days, so r moves only by what is counted

# ---- L: the shipped lighttpd recipe (lighttpd 1.4.69 speaks HTTP/2 by default) ----------------
L=$T/L; mkdir -p "$L/up"
write_conf "$L/rl.conf" lh2 "$LIMIT" "$PROXY"
start_proxy_recipe "$L" "debug.log-request-header-on-error = \"enable\"" || finish # it logs why lighttpd refused a request
SERVERS=("lighttpd http://127.0.0.1:$LP")

# ---- A: the shipped Apache recipe with mod_http2 (under mpm_event: not under prefork) ---------
A=$T/A; mkdir -p "$A"
write_conf "$A/rl.conf" ah2 "$LIMIT" "$PROXY"
DP=$(pick_port)
start_daemon "127.0.0.1:$DP" "$A/rl.conf" 2 "$A/filter.log" || finish
{
    echo "Protocols h2c http/1.1"
    sed "s|127.0.0.1:9000|127.0.0.1:$DP|" "$ROOT/etc/apache/proxy-fcgi.conf"
} > "$A/recipe.conf"
AP=$(pick_port)
APACHE_MPM=mpm_event start_apache "$A" "$AP" "$A/recipe.conf" "proxy proxy_fcgi http2" || finish
SERVERS+=("apache http://127.0.0.1:$AP")

# ---- uploads ----------------------------------------------------------------------------------
printf 'abc' > "$T/3b"
head -c 1048576 /dev/urandom > "$T/1m"
head -c 20971520 /dev/urandom > "$T/20m"
declare -A SHA LEN
for z in 3b 1m 20m; do SHA[$z]=$(sha256sum < "$T/$z" | cut -c1-64); LEN[$z]=$(wc -c < "$T/$z"); done

h2up() { # method url file [query]: an HTTP/2 upload of the file from a pipe (no length);
    curl -s --noproxy '*' --max-time 60 --http2-prior-knowledge -w '%{http_code} %{http_version}\n' \
        -o "$T/out" -D "$T/h" --trace-ascii "$T/trace" -X "$1" -T - \
        -H 'Content-Type: application/octet-stream' "$2/echo.cgi${4:-}" < "$3" || true
}   # prints "CODE HTTP-VERSION"
remaining() { # headers file: r of the RateLimit header
    hdr "$1" RateLimit | sed -n 's/.*;r=\([0-9]*\).*/\1/p'
}

# lighttpd 1.4.69 answers an HTTP/2 POST without content-length itself, 411 (its log:
# "POST-request, but content-length missing -> 411"), before any module sees it; other
# methods (PUT) pass, buffered whole by the recipe and handed over with CONTENT_LENGTH.
# Apache takes both.
for s in "${SERVERS[@]}"; do
    set -- $s; n=$1; u=$2
    if [ "$n" = lighttpd ]; then
        c=$(hcurl --http2-prior-knowledge -o /dev/null -D "$T/h0" "$u/static.txt"); r0=$(remaining "$T/h0")
        read -r c v < <(h2up POST "$u" "$T/3b")
        c2=$(hcurl --http2-prior-knowledge -o /dev/null -D "$T/h2" "$u/static.txt"); r2=$(remaining "$T/h2")
        # curl sees the 411 (or, when the refusal resets the stream while it still sends, 000)
        check "$n: an HTTP/2 POST without a length is refused by lighttpd itself ($c), logged, not counted (r: $r0 then $r2)" \
            test \( "$c" = 411 -o "$c" = 000 \) -a -n "$r0" -a "$r2" = "$((r0 - 1))"
        check "$n: lighttpd logged it: $(grep -o 'POST-request, but content-length missing -> 411' "$L/front.log" | head -n 1)" \
            grep -q 'POST-request, but content-length missing -> 411' "$L/front.log"
        m=PUT
    else
        m=POST
    fi
    for z in 3b 1m 20m; do
        read -r c v < <(h2up "$m" "$u" "$T/$z" '?sha256')
        got=$(hdr "$T/h" X-Echo-Length); sha=$(hdr "$T/h" X-Echo-Sha256)
        # the request's HEADERS frame, as curl's trace shows it: no content-length in it
        sent_len=$(awk '/^=> Send header/ {s = 1; next} /^(<=|=>)/ {s = 0} s' "$T/trace" |
            grep -ic '^[0-9a-f]*: content-length' || true)
        check "$n: HTTP/2 $m of $z sent without a length (content-length headers sent: $sent_len)" \
            test "$sent_len" = 0
        check "$n: HTTP/2 $m of $z -> $c over HTTP/$v, the backend read ${got:-?} of ${LEN[$z]} bytes" \
            test "$c" = 200 -a "$v" = 2 -a "$got" = "${LEN[$z]}"
        check "$n: HTTP/2 $m of $z: the backend's SHA-256 is the client's (${sha:0:16}...)" \
            test "$sha" = "${SHA[$z]}"
        echo "FIGURE: proxy-h2-upload: $n $m $z: ${LEN[$z]} bytes sent without a length over HTTP/$v, ${got:-0} read by the backend, sha256 $([ "$sha" = "${SHA[$z]}" ] && echo equal || echo DIFFERENT)"
    done
    read -r c v < <(h2up "$m" "$u" "$T/1m")
    check "$n: HTTP/2 $m of 1m echoed back byte for byte ($c, $(wc -c < "$T/out") bytes)" \
        test "$c" = 200 -a "$(sha256sum < "$T/out" | cut -c1-64)" = "${SHA[1m]}"

    # counted once: r before, for, and after one HTTP/2 upload
    c=$(hcurl --http2-prior-knowledge -o /dev/null -D "$T/h0" "$u/static.txt"); r0=$(remaining "$T/h0")
    read -r c v < <(h2up "$m" "$u" "$T/1m")
    r1=$(remaining "$T/h")
    c=$(hcurl --http2-prior-knowledge -o /dev/null -D "$T/h2" "$u/static.txt"); r2=$(remaining "$T/h2")
    check "$n: an admitted HTTP/2 $m with a body is counted once (r: $r0, then $r1 for it, then $r2)" \
        test -n "$r0" -a "$r1" = "$((r0 - 1))" -a "$r2" = "$((r0 - 2))"
done
rm -f "$T/20m"
left=$(find "$L/up" "$B" -maxdepth 1 -name 'lighttpd-upload-*' | wc -l)
check "no request body left in the servers' upload dirs ($left)" test "$left" = 0
for f in "$L/filter.log" "$A/filter.log" "$A/error.log"; do
    [ -e "$f" ] || continue
    check "no sanitizer report in ${f#"$T"/}" no_sanitizer_report "$f"
done
finish
