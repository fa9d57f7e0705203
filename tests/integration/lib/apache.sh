# apache.sh -- start a minimal Apache 2.4 around one recipe (source after lib.sh)
#
#   start_apache DIR PORT RECIPE MODULES   apache2 -f DIR/httpd.conf -DFOREGROUND on
#                                          127.0.0.1:PORT (below 32768), DocumentRoot
#                                          DIR/www, Include RECIPE (already templated),
#                                          LoadModule for each of MODULES besides the base
#                                          set; its pid added to PIDS, its log DIR/error.log
# APACHE_MPM (default mpm_prefork) names the MPM module: mod_http2 serves HTTP/2 only under
# mpm_event or mpm_worker, never prefork.
# User www-data; Timeout 10; KeepAliveTimeout is Apache's default (5 s). It runs in its own
# session: on SIGTERM Apache signals its whole process group, which would otherwise be the
# test script.
MODS=/usr/lib/apache2/modules

start_apache() {
    local d=$1 m
    mkdir -p "$d/www"
    echo "hello from apache" > "$d/www/index.html"
    {
        echo "ServerName 127.0.0.1"
        echo "Listen 127.0.0.1:$2"
        echo "PidFile $d/httpd.pid"
        echo "DefaultRuntimeDir $d"
        echo "ErrorLog $d/error.log"
        echo "LogLevel warn"
        echo "User www-data"
        echo "Group www-data"
        echo "Timeout 10"
        for m in ${APACHE_MPM:-mpm_prefork} authz_core authn_core authz_user mime dir alias env $4; do
            echo "LoadModule ${m}_module $MODS/mod_$m.so"
        done
        echo "DocumentRoot $d/www"
        echo "DirectoryIndex index.html"
        echo "TypesConfig /etc/mime.types"
        echo "<Directory $d/www>"
        echo "    Require all granted"
        echo "</Directory>"
        echo "Include $3"
    } > "$d/httpd.conf"
    apache2 -t -f "$d/httpd.conf" >/dev/null 2>"$d/t.err" || {
        fail "apache2 rejected $d/httpd.conf: $(cat "$d/t.err")"; return 1; }
    setsid apache2 -f "$d/httpd.conf" -DFOREGROUND 2>>"$d/apache.stderr" &
    PIDS+=("$!")
    wait_port "$2" 10 || { fail "apache2 not listening on $2: $(tail -n 3 "$d/error.log")"; return 1; }
}
