package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// utime 250 and stime 50 ticks (fields 14 and 15); a command name with
	// spaces and parentheses must not shift the fields.
	stat := "4242 (stile (serve) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 9 0 12345 1000000 2000 18446744073709551615\n"
	got, err := parseStatCPU(stat)
	if err != nil || got != 3*time.Second {
		t.Fatalf("parseStatCPU = %v, %v; want 3s (300 ticks at USER_HZ 100)", got, err)
	}
	for _, bad := range []string{"4242 stile S 1", "4242 (stile) S 1 2 3", "4242 (stile) S 1 4242 4242 0 -1 0 0 0 0 0 x 50 0"} {
		if _, err := parseStatCPU(bad); err == nil {
			t.Errorf("parseStatCPU(%q): no error", bad)
		}
	}
}

func TestParseStatus(t *testing.T) {
	status := "Name:\tstile\nVmPeak:\t 900000 kB\nVmHWM:\t   91288 kB\nVmRSS:\t   20480 kB\nThreads:\t9\n"
	m, err := parseStatus(status)
	if err != nil || m.RSS != 20480<<10 || m.HWM != 91288<<10 {
		t.Fatalf("parseStatus = %+v, %v; want RSS 20 MiB, HWM 91288 KiB", m, err)
	}
	if _, err := parseStatus("Name:\tkthreadd\nState:\tS\n"); err == nil {
		t.Error("parseStatus of a kernel thread (no Vm lines): no error")
	}
	if _, err := parseStatus("VmRSS:\t 12 MB\nVmHWM:\t 12 kB\n"); err == nil {
		t.Error("parseStatus with an unknown unit: no error")
	}
}

// tcpTable is /proc/net/tcp with a listener on 127.0.0.1:8080 (0x1F90,
// inode 5555), a connection from that port (not a listener) and a
// listener on another port.
const tcpTable = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5555 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 6666 1 0000000000000000 20 4 30 10 -1
   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7777 1 0000000000000000 100 0 0 10 0
`

func TestListenerInode(t *testing.T) {
	if in, ok := listenerInode(tcpTable, 8080); !ok || in != "5555" {
		t.Errorf("listenerInode(8080) = %q, %v; want the listener's 5555, not the connection's", in, ok)
	}
	if in, ok := listenerInode(tcpTable, 22); !ok || in != "7777" {
		t.Errorf("listenerInode(22) = %q, %v; want 7777", in, ok)
	}
	if in, ok := listenerInode(tcpTable, 9090); ok {
		t.Errorf("listenerInode(9090) = %q: found a listener nobody has", in)
	}
}

// TestServerPID walks a fake /proc: the process whose descriptor is the
// listener's socket is the server; a process holding another socket is not.
func TestServerPID(t *testing.T) {
	root := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	write("net/tcp", tcpTable)
	write("net/tcp6", "  sl  local_address ...\n")
	link("socket:[6666]", "100/fd/4")
	link("/dev/null", "321/fd/0")
	link("socket:[5555]", "321/fd/7")
	if pid, err := serverPID(root, 8080); err != nil || pid != 321 {
		t.Errorf("serverPID(8080) = %d, %v; want 321", pid, err)
	}
	if pid, err := serverPID(root, 22); err == nil {
		t.Errorf("serverPID(22) = %d: nobody here holds its socket", pid)
	}
	if pid, err := serverPID(root, 9090); err == nil {
		t.Errorf("serverPID(9090) = %d: nothing listens there", pid)
	}
}
