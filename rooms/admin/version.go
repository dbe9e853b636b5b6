package admin

import (
	"runtime/debug"
)

// version, when set at build time, is what BuildVersion returns:
//
//	go build -ldflags "-X roomd/rooms/admin.version=v1.4.0" ./cmd/roomd
var version string

// BuildVersion is roomd's version as the binary knows it: the one set with
// -ldflags "-X roomd/rooms/admin.version=...", or else the main module's
// version, which the go command derives from the VCS tag or commit
// ("v1.2.3", or a pseudo-version such as
// "v0.0.0-20260102150405-0123456789ab+dirty"), or "(devel)" when it could
// not, followed then by the VCS revision if the build recorded one.
// GatewayConfig and HubRooms use it when given no Version.
func BuildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	return versionOf(info)
}

func versionOf(info *debug.BuildInfo) string {
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	if version != "(devel)" {
		return version // it already names the tag or commit
	}
	var revision string
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if revision == "" {
		return version
	}
	if len(revision) > 12 {
		revision = revision[:12]
	}
	if dirty {
		revision += "+dirty"
	}
	return version + " " + revision
}
