package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	roomdv1 "roomd/gen/roomd/v1"
)

var publishCmd = &command{
	path:    "publish",
	args:    "<room> [text | -]",
	minArgs: 1, maxArgs: 2,
	summary: "send a message to every member of a room",
	help: payloadHelp + `
Prints the message's position in the room (seq and epoch: what watch
-since-seq and -epoch take) and how many members it was handed to.`,
	setup: func(fs *flag.FlagSet) action {
		var p payloadFlags
		p.register(fs)
		exclude := fs.String("exclude", "", "comma-separated client ids that do not receive it")
		return func(ctx context.Context, s *session, args []string) error {
			msg, err := p.read(s.stdin, args[1:])
			if err != nil {
				return err
			}
			req := &roomdv1.PublishRequest{RoomId: args[0]}
			if msg.binary {
				req.Payload = &roomdv1.PublishRequest_Binary{Binary: msg.data}
			} else {
				req.Payload = &roomdv1.PublishRequest_Text{Text: string(msg.data)}
			}
			for _, id := range strings.Split(*exclude, ",") {
				if id = strings.TrimSpace(id); id != "" {
					req.ExcludeClientIds = append(req.ExcludeClientIds, id)
				}
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			resp, err := c.Publish(ctx, req)
			if err != nil {
				return err
			}
			if s.json() {
				return s.printJSON(resp)
			}
			_, err = fmt.Fprintf(s.stdout, "published to room %s: seq %d, epoch %s, handed to %s\n",
				args[0], resp.Seq, resp.Epoch, plural(resp.RecipientCount, "member", "members"))
			return err
		}
	},
}

var sendCmd = &command{
	path:    "send",
	args:    "<client-id> [text | -]",
	minArgs: 1, maxArgs: 2,
	summary: "send a message to one connection only",
	help:    payloadHelp + "\nThe client id is one clients list shows.",
	setup: func(fs *flag.FlagSet) action {
		var p payloadFlags
		p.register(fs)
		return func(ctx context.Context, s *session, args []string) error {
			msg, err := p.read(s.stdin, args[1:])
			if err != nil {
				return err
			}
			req := &roomdv1.SendToClientRequest{ClientId: args[0]}
			if msg.binary {
				req.Payload = &roomdv1.SendToClientRequest_Binary{Binary: msg.data}
			} else {
				req.Payload = &roomdv1.SendToClientRequest_Text{Text: string(msg.data)}
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			resp, err := c.SendToClient(ctx, req)
			if err != nil {
				return err
			}
			if s.json() {
				return s.printJSON(resp)
			}
			_, err = fmt.Fprintf(s.stdout, "sent to client %s\n", args[0])
			return err
		}
	},
}

const payloadHelp = `The message is the text argument, sent as a WebSocket text frame; "-"
reads the text from stdin instead, less one trailing newline (what echo
adds). -file sends a file's bytes as they are, as a binary frame ("-file -"
reads them from stdin). Text starting with "-" goes after "--".
`

// payloadFlags choose how the message is given besides a text argument.
type payloadFlags struct {
	file string
}

func (p *payloadFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.file, "file", "", "send this file's bytes as a binary message instead of text (- for stdin)")
}

// message is what publish and send deliver.
type message struct {
	data   []byte
	binary bool
}

// read takes the message from the text argument (none or one in args) or
// from -file, exactly one of them.
func (p *payloadFlags) read(stdin io.Reader, args []string) (message, error) {
	switch {
	case p.file != "" && len(args) > 0:
		return message{}, usageErrorf("give the message as text or as -file, not both")
	case p.file == "-":
		data, err := io.ReadAll(stdin)
		if err != nil {
			return message{}, fmt.Errorf("reading stdin: %w", err)
		}
		return message{data, true}, nil
	case p.file != "":
		data, err := os.ReadFile(p.file)
		if err != nil {
			return message{}, usageErrorf("-file: %v", err)
		}
		return message{data, true}, nil
	case len(args) == 0:
		return message{}, usageErrorf("no message: give text, - for text from stdin, or -file")
	}
	text := []byte(args[0])
	if args[0] == "-" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return message{}, fmt.Errorf("reading stdin: %w", err)
		}
		text = trimNewline(data)
	}
	// A text frame must be UTF-8, and gRPC cannot carry anything else in
	// a string field: say so here rather than as a marshalling error.
	if !utf8.Valid(text) {
		return message{}, usageErrorf("the text is not valid UTF-8; send bytes as binary with -file")
	}
	return message{text, false}, nil
}

// trimNewline drops the one line ending that echo and editors add.
func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}
