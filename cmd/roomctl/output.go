package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// jsonOptions are the REST gateway's, so -o json shows what curl shows:
// lowerCamelCase names, every field even when empty, 64-bit integers and
// bytes (base64) as strings.
var jsonOptions = protojson.MarshalOptions{EmitUnpopulated: true}

func (s *session) json() bool { return s.output == outputJSON }

// printJSON writes m indented. protojson varies its whitespace on purpose;
// re-indenting makes the output the same every time.
func (s *session) printJSON(m proto.Message) error {
	b, err := jsonOptions.Marshal(m)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = s.stdout.Write(out.Bytes())
	return err
}

// printJSONLine writes m on one line (JSON Lines), for a stream of them.
func (s *session) printJSONLine(m proto.Message) error {
	b, err := jsonOptions.Marshal(m)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = s.stdout.Write(out.Bytes())
	return err
}

// writeTable writes rows under a header, in aligned columns.
func writeTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// field is one line of a record: a name and its value.
type field struct{ name, value string }

// writeRecord writes one object as aligned "name  value" lines: a room
// has too many fields for a row.
func writeRecord(w io.Writer, fields []field) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s\t%s\n", f.name, f.value)
	}
	return tw.Flush()
}

// cell makes a value safe in a table: "-" for empty, and quoted when it
// holds what would break a line or a column (a tab, a newline, escapes),
// since reasons, user ids and metadata come from others.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// timeLayout is how tables show times: to the second, in the local zone,
// with the zone's offset ("Z" for UTC) so that lines from machines in
// different zones compare.
const timeLayout = "2006-01-02 15:04:05Z07:00"

func timeCell(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().Local().Format(timeLayout)
}

// untilCell is a future time with how far off it is: when a ban ends.
func untilCell(ts *timestamppb.Timestamp, now time.Time) string {
	if ts == nil {
		return "-"
	}
	left := max(ts.AsTime().Sub(now).Round(time.Second), 0)
	return fmt.Sprintf("%s (in %s)", timeCell(ts), left)
}

func countCell(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// warnPartial tells the person that a cluster-wide answer lacks the nodes
// that did not answer in time. The answer is still printed and the exit
// code is 0: it is what roomd knows; -o json carries the same in partial
// and unreachableNodes.
func (s *session) warnPartial(partial bool, unreachable []string) {
	if partial {
		fmt.Fprintf(s.stderr, "roomctl: partial answer: these nodes did not answer in time: %s\n", strings.Join(unreachable, ", "))
	}
}

// plural is "1 member", "2 members".
func plural(n uint32, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
