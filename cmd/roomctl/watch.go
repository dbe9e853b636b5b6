package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	roomdv1 "roomd/gen/roomd/v1"
)

var watchCmd = &command{
	path:    "watch",
	args:    "<room>",
	minArgs: 1, maxArgs: 1,
	stream:  true,
	summary: "print a room's events as they happen, until Ctrl-C",
	help: `One line per event: joined, left (with its cause and close code), message
(with its seq; "from" is the sending client, absent for the admin API's),
deleted (the last). -o json prints each event as one JSON object per line,
as WatchRoom's REST stream shows its "result".

With -since-seq, the room's kept messages after that seq come first, then
live events, with nothing missed or seen twice between; OutOfRange (exit
code 1) when roomd no longer keeps them all.

A watch that is interrupted, or whose room is deleted, exits 0.`,
	setup: func(fs *flag.FlagSet) action {
		sinceSeq := fs.Uint64("since-seq", 0, "first replay the messages after this seq (publish prints it; 0: every message kept)")
		epoch := fs.String("epoch", "", "the epoch -since-seq belongs to (publish prints it); another is OutOfRange")
		return func(ctx context.Context, s *session, args []string) error {
			req := &roomdv1.WatchRoomRequest{RoomId: args[0], Epoch: *epoch}
			if given(fs)["since-seq"] {
				req.SinceSeq = sinceSeq
			} else if *epoch != "" {
				return usageErrorf("-epoch is only for -since-seq")
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			stream, err := c.WatchRoom(ctx, req)
			if err != nil {
				return err
			}
			for {
				ev, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					return nil // the room was deleted
				}
				if err != nil {
					return err
				}
				if s.json() {
					err = s.printJSONLine(ev)
				} else {
					_, err = fmt.Fprintln(s.stdout, eventLine(ev))
				}
				if err != nil {
					return err
				}
			}
		}
	},
}

// eventTimeLayout is timeLayout to the millisecond: events come fast.
const eventTimeLayout = "2006-01-02 15:04:05.000Z07:00"

// eventLine is one event as a person reads it, in words a grep finds:
// "client=", "user=", "seq=".
func eventLine(ev *roomdv1.WatchRoomResponse) string {
	when := ev.Time.AsTime().Local().Format(eventTimeLayout)
	var kind string
	var details []string
	switch e := ev.Event.(type) {
	case *roomdv1.WatchRoomResponse_ClientJoined:
		kind = "joined"
		details = clientDetails(e.ClientJoined.Client)
	case *roomdv1.WatchRoomResponse_ClientLeft:
		kind = "left"
		l := e.ClientLeft
		details = append(clientDetails(l.Client),
			"cause="+strings.ToLower(strings.TrimPrefix(l.Cause.String(), "LEAVE_CAUSE_")),
			"code="+strconv.FormatUint(uint64(l.CloseCode), 10))
		if l.Reason != "" {
			details = append(details, "reason="+strconv.Quote(l.Reason))
		}
	case *roomdv1.WatchRoomResponse_MessagePublished:
		kind = "message"
		m := e.MessagePublished
		details = []string{"seq=" + strconv.FormatUint(m.Seq, 10)}
		if m.FromClientId != "" {
			details = append(details, "from="+m.FromClientId)
		}
		details = append(details, "recipients="+countCell(m.RecipientCount))
		switch p := m.Payload.(type) {
		case *roomdv1.MessagePublished_Text:
			details = append(details, "text="+strconv.Quote(p.Text))
		case *roomdv1.MessagePublished_Binary:
			details = append(details, fmt.Sprintf("binary=%d bytes", len(p.Binary)))
		}
	case *roomdv1.WatchRoomResponse_RoomDeleted:
		kind = "deleted"
	default:
		// A newer roomd's event; -o json shows it whole.
		kind = "unknown"
	}
	return strings.TrimRight(fmt.Sprintf("%s  %-8s %s", when, kind, strings.Join(details, " ")), " ")
}

func clientDetails(c *roomdv1.Client) []string {
	d := []string{"client=" + c.GetClientId()}
	if c.GetUserId() != "" {
		d = append(d, "user="+strconv.Quote(c.GetUserId()))
	}
	return append(d, "node="+c.GetNode(), "addr="+c.GetRemoteAddr())
}
