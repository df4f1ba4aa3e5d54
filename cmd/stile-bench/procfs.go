package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat. The kernel
// exports them in USER_HZ, which is 100 on every architecture Linux
// ships for (it is fixed for the ABI, unlike the kernel's HZ).
const userHZ = 100

// procCPU is a process's CPU time so far (user + system), from
// /proc/<pid>/stat.
func procCPU(root string, pid int) (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, fmt.Errorf("read server CPU: %w", err)
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime (fields 14 and 15) from a stat line.
// The command name (field 2) is in parentheses and may hold spaces or
// parentheses itself, so fields are counted from the last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("stat: no ')' after the command name")
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] { // fields 14 and 15; f[0] is field 3 (state)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat: utime/stime %q: %w", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// memory is a process's resident set now and at its peak.
type memory struct {
	RSS, HWM int64 // bytes
}

func procMemory(root string, pid int) (memory, error) {
	b, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "status"))
	if err != nil {
		return memory{}, fmt.Errorf("read server memory: %w", err)
	}
	return parseStatus(string(b))
}

// parseStatus reads VmRSS and VmHWM ("VmRSS:	   12345 kB") from
// /proc/<pid>/status.
func parseStatus(status string) (memory, error) {
	var m memory
	found := 0
	for line := range strings.Lines(status) {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("status: %s: unexpected %q", name, strings.TrimSpace(rest))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("status: %s: %w", name, err)
		}
		if name == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.HWM = kb << 10
		}
		found++
	}
	if found != 2 {
		return m, errors.New("status: no VmRSS and VmHWM lines (a kernel thread, or not Linux?)")
	}
	return m, nil
}

// listenerInode finds, in the text of /proc/net/tcp or tcp6, the socket
// inode of a listener (state 0A) on port, on any local address.
func listenerInode(table string, port int) (string, bool) {
	want := fmt.Sprintf(":%04X", port)
	for line := range strings.Lines(table) {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" || !strings.HasSuffix(f[1], want) {
			continue
		}
		return f[9], true
	}
	return "", false
}

// serverPID finds the process that listens on port: the listener's inode
// from /proc/net/tcp{,6}, then the process with a descriptor on
// socket:[inode]. It needs permission to read the server's /proc/<pid>/fd
// (the same user, or root); -server-pid says it outright otherwise.
func serverPID(root string, port int) (int, error) {
	var inode string
	for _, t := range []string{"net/tcp", "net/tcp6"} {
		b, err := os.ReadFile(filepath.Join(root, t))
		if err != nil {
			continue
		}
		if in, ok := listenerInode(string(b), port); ok {
			inode = in
			break
		}
	}
	if inode == "" {
		return 0, fmt.Errorf("no listener on port %d in %s/net/tcp{,6}", port, root)
	}
	target := "socket:[" + inode + "]"
	fds, _ := filepath.Glob(filepath.Join(root, "[0-9]*", "fd", "*"))
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && l == target {
			rel, _ := filepath.Rel(root, fd)
			return strconv.Atoi(strings.SplitN(rel, string(filepath.Separator), 2)[0])
		}
	}
	return 0, fmt.Errorf("no process of ours holds the listener on port %d (inode %s): give -server-pid", port, inode)
}
