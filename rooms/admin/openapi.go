package admin

import (
	"bytes"
	"encoding/json"
	"fmt"

	"roomd/gen/openapiv2"
)

// API title and description in the OpenAPI document; the generator knows
// neither (it names the document after the proto file).
const (
	apiTitle       = "roomd admin API"
	apiDescription = "Create, inspect and delete rooms, list and kick clients, ban users, publish messages " +
		"and watch a room's events. The same API is served over gRPC as roomd.v1.RoomService " +
		"(with server reflection). When roomd runs with an admin token, every call needs " +
		"\"Authorization: Bearer <token>\"."
)

// openAPIDocument returns the generated OpenAPI document with its info
// object (title, description, version) filled in. The other top-level
// fields keep their order and content.
func openAPIDocument(version string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(openapiv2.RoomServiceJSON))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("OpenAPI document: not a JSON object (%v)", err)
	}
	var info bytes.Buffer
	enc := json.NewEncoder(&info)
	enc.SetEscapeHTML(false) // keep "<token>" readable
	if err := enc.Encode(struct {
		Title       string `json:"title"`
		Description string `json:"description"`
		Version     string `json:"version"`
	}{apiTitle, apiDescription, version}); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.WriteByte('{')
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("OpenAPI document: %w", err)
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, fmt.Errorf("OpenAPI document: %q: %w", key, err)
		}
		if key == "info" {
			value = info.Bytes()
		}
		if out.Len() > 1 {
			out.WriteByte(',')
		}
		name, _ := json.Marshal(key)
		out.Write(name)
		out.WriteByte(':')
		out.Write(value)
	}
	out.WriteByte('}')
	var indented bytes.Buffer
	if err := json.Indent(&indented, out.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("OpenAPI document: %w", err)
	}
	indented.WriteByte('\n')
	return indented.Bytes(), nil
}
