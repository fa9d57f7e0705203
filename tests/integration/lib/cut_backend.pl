#!/usr/bin/perl
# cut_backend.pl PORT -- the hostile backend: answers every request with a chunked 200, sends
# 20 chunks of 10000 bytes, then closes the connection without the terminating 0 chunk (a
# backend that dies halfway through a chunked body). Binds 127.0.0.1 only.
use strict;
use warnings;
use IO::Socket::INET;

$SIG{PIPE} = "IGNORE"; # a client (or a port probe) that hangs up must not kill us

my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $ARGV[0], Listen => 16,
                              ReuseAddr => 1, Proto => 'tcp') or die "cut_backend: $!\n";
while (my $c = $s->accept) {
    while (defined(my $l = <$c>)) { last if $l eq "\r\n"; }
    print $c "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n",
             "Transfer-Encoding: chunked\r\n\r\n";
    printf $c "%x\r\n%s\r\n", 10000, 'x' x 10000 for 1 .. 20;
    close $c;
}
