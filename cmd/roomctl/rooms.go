package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	roomdv1 "roomd/gen/roomd/v1"
)

var roomsList = &command{
	path:    "rooms list",
	summary: "list the rooms, by id",
	help:    "Every room, following roomd's pages, unless -limit says fewer.",
	setup: func(fs *flag.FlagSet) action {
		var pages pageFlags
		pages.register(fs, "rooms")
		return func(ctx context.Context, s *session, _ []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			var answer partialAnswer
			rooms, next, err := collect(pages, func(size int32, token string) ([]*roomdv1.Room, string, error) {
				resp, err := c.ListRooms(ctx, &roomdv1.ListRoomsRequest{PageSize: size, PageToken: token})
				if err != nil {
					return nil, "", err
				}
				answer.add(resp.Partial, resp.UnreachableNodes)
				return resp.Rooms, resp.NextPageToken, nil
			})
			if err != nil {
				return err
			}
			s.warnPartial(answer.partial, answer.unreachable)
			if s.json() {
				return s.printJSON(&roomdv1.ListRoomsResponse{Rooms: rooms, NextPageToken: next, Partial: answer.partial, UnreachableNodes: answer.unreachable})
			}
			rows := make([][]string, len(rooms))
			for i, r := range rooms {
				rows[i] = []string{r.RoomId, countCell(r.ClientCount), maxClientsCell(r.MaxClients), strconv.FormatBool(r.Echo), strconv.FormatBool(r.Presence), strconv.FormatBool(r.AutoCreated), timeCell(r.CreateTime)}
			}
			if err := writeTable(s.stdout, []string{"ROOM", "CLIENTS", "MAX", "ECHO", "PRESENCE", "AUTO", "CREATED"}, rows); err != nil {
				return err
			}
			s.tellMore("rooms", next)
			return nil
		}
	},
}

var roomsGet = &command{
	path:    "rooms get",
	args:    "<room>",
	minArgs: 1, maxArgs: 1,
	summary: "show one room: options, metadata, client count, position",
	setup: func(*flag.FlagSet) action {
		return func(ctx context.Context, s *session, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			resp, err := c.GetRoom(ctx, &roomdv1.GetRoomRequest{RoomId: args[0]})
			if err != nil {
				return err
			}
			s.warnPartial(resp.Partial, resp.UnreachableNodes)
			if s.json() {
				return s.printJSON(resp)
			}
			return writeRecord(s.stdout, roomFields(resp.Room))
		}
	},
}

var roomsCreate = &command{
	path:    "rooms create",
	args:    "<room>",
	minArgs: 1, maxArgs: 1,
	summary: "create a room that lives until deleted",
	help: `A room id is 1-128 letters, digits and _ - . : characters. A room made
here stays when its last member leaves, unlike one made by a client
joining. Booleans take their value after "=": -echo=false.`,
	setup: func(fs *flag.FlagSet) action {
		maxClients := fs.Uint("max-clients", 0, "most members at once (0: unlimited, up to roomd's -max-clients-per-room)")
		echo := fs.Bool("echo", true, "members receive their own messages back")
		presence := fs.Bool("presence", true, "client protocol members hear who joins and leaves and may list the members; false for audiences too big for that")
		historySize := fs.Uint("history-size", 0, "messages kept for resuming clients (not given: roomd's -history-size)")
		metadata := metadataFlag{}
		fs.Var(metadata, "metadata", "a `key=value` label; repeat for more")
		return func(ctx context.Context, s *session, args []string) error {
			set := given(fs)
			req := &roomdv1.CreateRoomRequest{RoomId: args[0], Metadata: metadata}
			if *maxClients > 1<<32-1 || *historySize > 1<<32-1 {
				return usageErrorf("-max-clients and -history-size must fit in 32 bits")
			}
			req.MaxClients = uint32(*maxClients)
			if set["echo"] {
				req.Echo = echo
			}
			if set["presence"] {
				req.Presence = presence
			}
			if set["history-size"] {
				n := uint32(*historySize)
				req.HistorySize = &n
			}
			c, err := s.client()
			if err != nil {
				return err
			}
			resp, err := c.CreateRoom(ctx, req)
			if err != nil {
				return err
			}
			if s.json() {
				return s.printJSON(resp)
			}
			return writeRecord(s.stdout, roomFields(resp.Room))
		}
	},
}

var roomsDelete = &command{
	path:    "rooms delete",
	args:    "<room>",
	minArgs: 1, maxArgs: 1,
	summary: "delete a room, removing every member",
	help: `Raw members (/ws/<room>) are closed with 4001; client protocol members
get a room_deleted notice and stay connected.`,
	setup: func(*flag.FlagSet) action {
		return func(ctx context.Context, s *session, args []string) error {
			c, err := s.client()
			if err != nil {
				return err
			}
			resp, err := c.DeleteRoom(ctx, &roomdv1.DeleteRoomRequest{RoomId: args[0]})
			if err != nil {
				return err
			}
			s.warnPartial(resp.Partial, resp.UnreachableNodes)
			if s.json() {
				return s.printJSON(resp)
			}
			_, err = fmt.Fprintf(s.stdout, "deleted room %s: %s removed, %d disconnected with 4001\n",
				args[0], plural(resp.RemovedCount, "member", "members"), resp.DisconnectedCount)
			return err
		}
	},
}

// roomFields are a room as rooms get and rooms create print it.
func roomFields(r *roomdv1.Room) []field {
	fields := []field{
		{"room", r.GetRoomId()},
		{"clients", countCell(r.GetClientCount())},
		{"max clients", maxClientsCell(r.GetMaxClients())},
		{"echo", strconv.FormatBool(r.GetEcho())},
		{"presence", strconv.FormatBool(r.GetPresence())},
		{"history size", countCell(r.GetHistorySize())},
		{"last seq", strconv.FormatUint(r.GetLastSeq(), 10)},
		{"epoch", cell(r.GetEpoch())},
		{"auto created", strconv.FormatBool(r.GetAutoCreated())},
		{"created", timeCell(r.GetCreateTime())},
	}
	name := "metadata"
	for _, k := range slices.Sorted(maps.Keys(r.GetMetadata())) {
		fields = append(fields, field{name, cell(k + "=" + r.GetMetadata()[k])})
		name = ""
	}
	if name != "" {
		fields = append(fields, field{name, "-"})
	}
	return fields
}

func maxClientsCell(n uint32) string {
	if n == 0 {
		return "unlimited"
	}
	return countCell(n)
}

// metadataFlag collects -metadata key=value, once per use.
type metadataFlag map[string]string

func (m metadataFlag) String() string {
	var pairs []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		pairs = append(pairs, k+"="+m[k])
	}
	return strings.Join(pairs, ",")
}

func (m metadataFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return errors.New("want key=value")
	}
	if _, dup := m[k]; dup {
		return fmt.Errorf("key %q given twice", k)
	}
	m[k] = v
	return nil
}
