#!/usr/bin/perl
# echo.cgi -- the test backend: answers with what it was sent (run by lighttpd mod_cgi)
#   body          the request body, byte for byte
#   X-Echo-Method, X-Echo-Uri, X-Echo-Length   REQUEST_METHOD, REQUEST_URI, body bytes
#   X-Req-NAME    one per HTTP_NAME request header
#   ?status=N     answer with status N;  ?sleep=S  wait S seconds first
#   ?gen=N        answer N bytes of a fixed pattern instead of the body, written in 7919-byte
#                 pieces without a Content-Length (the web server sends it chunked);
#                 with &stall=S, wait S seconds after the first piece (silent after the head)
#   ?sha256       read the body in 64 KiB pieces without keeping it, and answer its SHA-256 in
#                 hex (the body of the answer and X-Echo-Sha256) and its length (X-Echo-Length):
#                 for uploads too large to echo
use strict;
use warnings;
use Digest::SHA;
binmode STDIN;
binmode STDOUT;
my $q = $ENV{QUERY_STRING} // '';
my ($status) = $q =~ /(?:^|&)status=(\d{3})/;
my ($sleep) = $q =~ /(?:^|&)sleep=(\d+)/;
my ($gen) = $q =~ /(?:^|&)gen=(\d+)/;
my ($stall) = $q =~ /(?:^|&)stall=(\d+)/;
sleep $sleep if $sleep;
my $body = '';
my $len = $ENV{CONTENT_LENGTH} // 0;
if ($q =~ /(?:^|&)sha256(?:&|$)/) {
    my ($sha, $got, $buf) = (Digest::SHA->new(256), 0, '');
    while ($got < $len) {
        my $n = read(STDIN, $buf, $len - $got < 65536 ? $len - $got : 65536);
        last unless $n;
        $sha->add($buf);
        $got += $n;
    }
    my $hex = $sha->hexdigest;
    print "Status: 200\r\nContent-Type: text/plain\r\nX-Echo-Length: $got\r\n",
          "X-Echo-Sha256: $hex\r\n\r\n$hex\n";
    exit 0;
}
while (length($body) < $len) {
    my $n = read(STDIN, $body, $len - length($body), length($body));
    last unless $n;
}
print "Status: ", ($status // 200), "\r\n";
print "Content-Type: application/octet-stream\r\n";
print "X-Echo-Method: $ENV{REQUEST_METHOD}\r\n";
print "X-Echo-Uri: $ENV{REQUEST_URI}\r\n";
print "X-Echo-Length: ", length($body), "\r\n";
print "X-Echo-Content-Type: ", ($ENV{CONTENT_TYPE} // ''), "\r\n";
for my $k (sort grep { /^HTTP_/ } keys %ENV) {
    (my $v = $ENV{$k}) =~ s/[\r\n]/ /g;
    print "X-Req-", substr($k, 5), ": $v\r\n";
}

print "\r\n";
if (defined $gen) {
    $| = 1;
    my $pattern = join('', map { chr(($_ * 31 + 7) % 256) } 0 .. 7918);
    for (my $left = $gen; $left > 0; $left -= 7919) {
        print substr($pattern, 0, $left < 7919 ? $left : 7919);
        sleep $stall if $stall && $left == $gen;
    }
    exit 0;
}
print $body;
