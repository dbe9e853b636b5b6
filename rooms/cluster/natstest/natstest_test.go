package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestServerKeepsStreamsAcrossRestart(t *testing.T) {
	s := Start(t)
	nc := s.Connect()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.a", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s.Start()
	for {
		st, err := js.Stream(ctx, "T")
		if err == nil {
			m, err := st.GetMsg(ctx, 1)
			if err == nil && string(m.Data) == "kept" {
				return
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("message not back after restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestClusterHasReplicatedJetStream(t *testing.T) {
	c := StartCluster(t, 3)
	nc := c.Servers[0].Connect()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A new cluster places replicas once every server has joined the
	// meta group: until then creation says "no suitable peers".
	for {
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R", Subjects: []string{"r.>"}, Replicas: 3})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A new replicated stream answers once it has elected a leader.
	for {
		ack, err := js.Publish(ctx, "r.a", []byte("x"))
		if err == nil {
			if ack.Sequence != 1 {
				t.Fatalf("first message has sequence %d", ack.Sequence)
			}
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("publish: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
