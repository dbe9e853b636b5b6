package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"roomd/rooms/cluster/natstest"
)

// startNode runs one roomd node of a cluster on the NATS at url.
func startNode(t *testing.T, url, name string, args ...string) *testServer {
	t.Helper()
	return startServer(t, append([]string{"-nats-url", url, "-node-name", name, "-cluster-call-timeout", "1s"}, args...)...)
}

// Raw members on three nodes, writing at once: each gets every message of
// the others once, and all see one order.
func TestClusterRelaysRawMessagesInOneOrder(t *testing.T) {
	nats := natstest.Start(t)
	nodes := []*testServer{startNode(t, nats.URL(), "a"), startNode(t, nats.URL(), "b"), startNode(t, nats.URL(), "c")}
	var conns []*websocket.Conn
	for _, n := range nodes {
		conns = append(conns, n.dial(t, "chat", "user=u"))
	}
	waitMembers(t, nodes[0], "chat", 3)
	const each = 20
	for k := range each {
		for i, ws := range conns {
			if err := ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, "%d-%d", i, k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var first []string
	for i, ws := range conns {
		var got []string
		ws.SetReadDeadline(time.Now().Add(15 * time.Second))
		for len(got) < 3*each {
			_, data, err := ws.ReadMessage()
			if err != nil {
				t.Fatalf("member on node %d: %v after %d messages", i, err, len(got))
			}
			got = append(got, string(data))
		}
		if i == 0 {
			first = got
		} else if fmt.Sprint(got) != fmt.Sprint(first) {
			t.Fatalf("node %d's member saw another order:\n%v\n%v", i, got, first)
		}
	}
}

// waitMembers waits until s's node counts n members of room, across nodes.
func waitMembers(t *testing.T, s *testServer, room string, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var got struct {
			Room struct {
				ClientCount int `json:"clientCount"`
			} `json:"room"`
		}
		status := s.rest(t, "GET", "/v1/rooms/"+room, "", &got)
		if status == 200 && got.Room.ClientCount == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("room %s has %d members (HTTP %d), want %d", room, got.Room.ClientCount, status, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
