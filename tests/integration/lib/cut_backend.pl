#!/usr/bin/perl
# cut_backend.pl PORT -- the hostile backend: answers every request with a 200 and sends 20
# pieces of 10000 bytes, then closes the connection before the answer is complete (a backend
# that dies halfway through its body). Binds 127.0.0.1 only.
#   default              chunked: 20 chunks, then no terminating 0 chunk
#   target holding "cl"  Content-Length: 400000, then only the 200000 bytes
use strict;
use warnings;
use IO::Socket::INET;

$SIG{PIPE} = "IGNORE"; # a client (or a port probe) that hangs up must not kill us

my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $ARGV[0], Listen => 16,
                              ReuseAddr => 1, Proto => 'tcp') or die "cut_backend: $!\n";
while (my $c = $s->accept) {
    my $first = <$c> // '';
    while (defined(my $l = <$c>)) { last if $l eq "\r\n"; }
    my ($target) = $first =~ /^\S+ (\S+)/;
    if (($target // '') =~ /cl/) {
        print $c "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n",
                 "Content-Length: 400000\r\n\r\n";
        print $c 'x' x 10000 for 1 .. 20;
    } else {
        print $c "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n",
                 "Transfer-Encoding: chunked\r\n\r\n";
        printf $c "%x\r\n%s\r\n", 10000, 'x' x 10000 for 1 .. 20;
    }
    close $c;
}
