package login

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The device cookie (OWASP's "device cookie" against lockout abuse): a
// browser that completed a sign-in for an account carries a long-lived
// cookie that names the user and when it was issued, MAC'd with a key
// derived from the master key. On stile's pages the password and code
// steps read it: for the user it names, the account-wide failure ceiling
// does not apply — so an attacker who spreads guesses over many addresses
// to hit that ceiling does not keep the owner out of a browser they used
// before. The cookie's own guesses count against "device:<id>" with the
// per-source policy, so a stolen cookie buys five guesses, not a bypass.
//
// The JSON login API is called cross-origin without credentials and the
// direct mode has no browser: neither sees the cookie, and their users
// rely on the per-source counts.

// DeviceLifetime is how long a device cookie is honoured after the sign-in
// that issued it; every sign-in issues a fresh one.
const DeviceLifetime = 180 * 24 * time.Hour

const deviceCookie = "stile_device"

// Device is a browser recognised by its device cookie: the user it signed
// in as, and the cookie's own ID (its throttling subject).
type Device struct {
	UserID string
	ID     string
}

// Devices issues and reads device cookies.
type Devices struct {
	key    []byte
	secure bool
	now    func() time.Time
}

func newDevices(key []byte, secure bool, now func() time.Time) *Devices {
	if now == nil {
		now = time.Now
	}
	return &Devices{key: key, secure: secure, now: now}
}

func (d *Devices) name() string {
	if d.secure {
		return "__Host-" + deviceCookie
	}
	return deviceCookie
}

// value is "<user ID>.<issued, Unix seconds>.<random ID>.<MAC>".
func (d *Devices) mac(userID, issued, id string) string {
	m := hmac.New(sha256.New, d.key)
	m.Write([]byte("stile device cookie v1\x00" + userID + "\x00" + issued + "\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// issue gives the browser a device cookie for userID.
func (d *Devices) issue(w http.ResponseWriter, userID string) {
	if d == nil || len(d.key) == 0 || userID == "" || strings.Contains(userID, ".") {
		return
	}
	b := make([]byte, 16)
	rand.Read(b)
	id, issued := base64.RawURLEncoding.EncodeToString(b), strconv.FormatInt(d.now().Unix(), 10)
	http.SetCookie(w, &http.Cookie{Name: d.name(), Value: userID + "." + issued + "." + id + "." + d.mac(userID, issued, id),
		Path: "/", MaxAge: int(DeviceLifetime / time.Second), HttpOnly: true, Secure: d.secure, SameSite: http.SameSiteLaxMode})
}

// read returns the device the request's cookie names, or nil if there is
// none, or it is malformed, forged or expired.
func (d *Devices) read(r *http.Request) *Device {
	if d == nil || len(d.key) == 0 {
		return nil
	}
	c, err := r.Cookie(d.name())
	if err != nil {
		return nil
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 4 {
		return nil
	}
	userID, issued, id, mac := parts[0], parts[1], parts[2], parts[3]
	if !hmac.Equal([]byte(mac), []byte(d.mac(userID, issued, id))) {
		return nil
	}
	at, err := strconv.ParseInt(issued, 10, 64)
	if err != nil {
		return nil
	}
	if age := d.now().Sub(time.Unix(at, 0)); age > DeviceLifetime || age < -time.Minute {
		return nil
	}
	return &Device{UserID: userID, ID: id}
}

// of returns device if it names userID, else nil: a cookie for another
// account exempts nothing.
func (dev *Device) of(userID string) *Device {
	if dev == nil || dev.UserID != userID {
		return nil
	}
	return dev
}
