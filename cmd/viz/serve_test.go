package main

import (
	"net"
	"testing"
)

func TestAddresses(t *testing.T) {
	tests := []struct {
		addr  *net.TCPAddr
		local string
		share bool // whether other machines get addresses to use
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, "127.0.0.1:8080", false},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 8080}, "localhost:8080", true},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 9000}, "localhost:9000", true},
		{&net.TCPAddr{IP: net.IPv4(192, 168, 1, 20), Port: 8080}, "192.168.1.20:8080", false},
	}
	for _, tt := range tests {
		if got := localAddr(tt.addr); got != tt.local {
			t.Errorf("localAddr(%v) = %q, want %q", tt.addr, got, tt.local)
		}
		// A machine without a network has no address to share, so only
		// "none when it should have none" can be checked everywhere.
		if urls := shareURLs(tt.addr); !tt.share && len(urls) != 0 {
			t.Errorf("shareURLs(%v) = %q, want none", tt.addr, urls)
		}
	}
}
