package account

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/uuid"

	"github.com/stile-id/stile/internal/passhash"
	"github.com/stile-id/stile/storage"
)

// Import reads accounts from another system as JSON Lines, one object a
// line:
//
//	{"username": "ada", "email": "ada@example.com", "phone": "+44…", "roles": ["editor"],
//	 "attributes": {"plan": "pro"}, "password_hash": "$2y$10$…", "totp_secret": "JBSW…", "disabled": false}
//
// Only username is required. password_hash is the other system's hash,
// stored as it is (internal/passhash lists the formats; a hash whose
// parameters ask for more work than passhash.Limits is refused) and
// replaced by stile's argon2id at the user's first sign-in; without one
// the account cannot sign in until an operator sets a password or sends an
// enrolment link. totp_secret is an authenticator's base32 secret, sealed
// as an enrolment would seal it.
//
// Records are written in batches (ImportOptions.BatchSize), one
// transaction each. An account whose username or email is taken is
// skipped, never updated, so a second run imports nothing. A line that
// cannot be imported (bad JSON, missing username, unknown hash format…)
// is reported with its 1-based line number and the rest go on; a batch
// the database refuses fails as a whole. Each batch records one
// "user.imported" audit event with its counts. The error is for what stops
// the whole import (the reader failed, the context ended); the report then
// says how far it got.
func (s *Service) Import(ctx context.Context, a Actor, r io.Reader, o ImportOptions) (*ImportReport, error) {
	im := &importer{s: s, a: a, o: o, rep: &ImportReport{Skipped: []ImportSkip{}, Failed: []ImportFailure{}}}
	if im.o.BatchSize <= 0 {
		im.o.BatchSize = DefaultImportBatch
	}
	im.o.BatchSize = min(im.o.BatchSize, MaxImportBatch)
	err := eachLine(r, func(line int, text []byte, tooLong bool) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		im.add(line, text, tooLong)
		if len(im.batch) >= im.o.BatchSize || im.done-im.told >= 4*im.o.BatchSize { // a long run of bad lines still shows progress
			im.flush(ctx)
		}
		return nil
	})
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		im.flush(ctx)
	}
	return im.rep, err
}

// Batch sizes: the default, and the most one transaction may hold.
const (
	DefaultImportBatch = 500
	MaxImportBatch     = 5000
)

// maxImportLine bounds one line: attributes are capped at 4 KiB, so a
// record is far smaller; a longer line is reported, not buffered.
const maxImportLine = 64 << 10

// ImportOptions tune an import.
type ImportOptions struct {
	BatchSize int // records per transaction; 0: DefaultImportBatch
	// Progress, if set, hears after each batch how many records (lines
	// with something on them) have been dealt with.
	Progress func(done int)
}

// ImportReport is what an import did.
type ImportReport struct {
	Imported int             `json:"imported"`
	Skipped  []ImportSkip    `json:"skipped"`
	Failed   []ImportFailure `json:"failed"`
}

// ImportSkip is an account left out because its username or email is
// taken, by an existing account or an earlier line.
type ImportSkip struct {
	Line     int    `json:"line"`
	Username string `json:"username"`
	Reason   string `json:"reason"`
}

// ImportFailure is a line that could not be imported, and why (never with
// its hash or secret).
type ImportFailure struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

// importRecord is one line of the input.
type importRecord struct {
	Username     string             `json:"username"`
	Email        string             `json:"email"`
	Phone        string             `json:"phone"`
	Roles        []string           `json:"roles"`
	Attributes   storage.Attributes `json:"attributes"`
	PasswordHash string             `json:"password_hash"`
	TOTPSecret   string             `json:"totp_secret"`
	Disabled     flag               `json:"disabled"`
}

// flag is a JSON boolean that also takes 0 and 1: MySQL's JSON_OBJECT
// writes a comparison (status = 0) as a number.
type flag bool

func (f *flag) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true", "1":
		*f = true
	case "false", "0", "null":
		*f = false
	default:
		return errors.New("disabled: want true, false, 1 or 0")
	}
	return nil
}

type importer struct {
	s     *Service
	a     Actor
	o     ImportOptions
	rep   *ImportReport
	batch []pending
	done  int // records dealt with, for Progress
	told  int // done when Progress last heard it
}

// pending is a valid record waiting for its batch.
type pending struct {
	line   int
	user   storage.User
	secret string // normalised base32; "" for none
}

func (im *importer) add(line int, text []byte, tooLong bool) {
	im.done++
	if tooLong {
		im.fail(line, fmt.Sprintf("the line is longer than %d bytes", maxImportLine))
		return
	}
	p, err := parseRecord(text)
	if err != nil {
		im.fail(line, err.Error())
		return
	}
	p.line = line
	im.batch = append(im.batch, p)
}

func (im *importer) fail(line int, reason string) {
	im.rep.Failed = append(im.rep.Failed, ImportFailure{Line: line, Reason: reason})
}

// parseRecord decodes and checks one line: everything the database would
// refuse is found here, so one bad line does not sink its batch.
func parseRecord(text []byte) (pending, error) {
	var rec importRecord
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.DisallowUnknownFields() // a "password" field in plain text, a typo: say so rather than drop it
	if err := dec.Decode(&rec); err != nil {
		return pending{}, fmt.Errorf("not a JSON object of an account: %v", err)
	}
	if dec.More() {
		return pending{}, errors.New("more than one JSON value on the line")
	}
	u := storage.User{Username: rec.Username, Email: rec.Email, Phone: rec.Phone, Roles: storage.Strings(rec.Roles),
		Attributes: rec.Attributes, PasswordHash: rec.PasswordHash, Disabled: bool(rec.Disabled)}
	if strings.TrimSpace(u.Username) == "" {
		return pending{}, errors.New("username: missing")
	}
	if err := checkEmail(u.Email); err != nil {
		return pending{}, err
	}
	if err := storage.ValidateUser(&u); err != nil {
		return pending{}, errors.New(storage.InvalidReason(err))
	}
	if u.PasswordHash != "" {
		if _, err := passhash.Scheme(u.PasswordHash); err != nil {
			return pending{}, fmt.Errorf("password_hash: %v", err)
		}
	}
	secret, err := totpSecret(rec.TOTPSecret)
	if err != nil {
		return pending{}, err
	}
	return pending{user: u, secret: secret}, nil
}

// totpSecret normalises an authenticator's base32 secret to the form
// stile stores (upper case, no padding or spaces) and checks it has at
// least RFC 4226's 128 bits… or the 80 that many systems issued.
func totpSecret(s string) (string, error) {
	s = strings.ToUpper(strings.TrimRight(strings.Join(strings.Fields(s), ""), "="))
	if s == "" {
		return "", nil
	}
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
	switch {
	case err != nil:
		return "", errors.New("totp_secret: not base32")
	case len(b) < 10 || len(b) > 64:
		return "", fmt.Errorf("totp_secret: %d bytes; want 10 to 64", len(b))
	}
	return s, nil
}

// flush writes the batch in one transaction and reports its outcome.
func (im *importer) flush(ctx context.Context) {
	defer func() {
		im.batch = im.batch[:0]
		if im.o.Progress != nil && im.done != im.told {
			im.told = im.done
			im.o.Progress(im.done)
		}
	}()
	if len(im.batch) == 0 {
		return
	}
	rows, err := im.sealed()
	var skipped []string
	if err == nil {
		skipped, err = im.s.db.ImportUsers(ctx, rows)
	}
	first, last := im.batch[0].line, im.batch[len(im.batch)-1].line
	detail := storage.Attributes{"first_line": first, "last_line": last, "records": len(im.batch)}
	if err != nil {
		im.s.log.Error("import batch refused", "first_line", first, "last_line", last, "err", err)
		for _, p := range im.batch {
			im.fail(p.line, "its batch (lines "+fmt.Sprint(first, "-", last)+") was refused by the database; see the server log")
		}
		im.s.audit(ctx, im.a, "user.imported", "", detail, err)
		return
	}
	n := 0
	for i, why := range skipped {
		if why != "" {
			im.rep.Skipped = append(im.rep.Skipped, ImportSkip{Line: im.batch[i].line, Username: rows[i].Username, Reason: why})
			continue
		}
		n++
	}
	im.rep.Imported += n
	detail["imported"], detail["skipped"] = n, len(im.batch)-n
	im.s.audit(ctx, im.a, "user.imported", "", detail, nil)
}

// sealed gives each record its ID and seals its TOTP secret for that ID.
func (im *importer) sealed() ([]storage.ImportUser, error) {
	rows := make([]storage.ImportUser, len(im.batch))
	for i, p := range im.batch {
		rows[i].User = p.user
		rows[i].ID = uuid.NewString()
		if p.secret == "" {
			continue
		}
		if im.s.c.Sealer == nil {
			return nil, errors.New("import a TOTP secret: no sealer configured")
		}
		sealed, err := im.s.c.Sealer.Seal([]byte(p.secret), storage.TOTPSecretAAD(rows[i].ID))
		if err != nil {
			return nil, fmt.Errorf("seal TOTP secret: %w", err)
		}
		rows[i].TOTPSealed = sealed
	}
	return rows, nil
}

// eachLine calls fn with every line of r that is not blank, numbered from
// 1 (blank lines count in the numbering, as an editor shows it). A line
// over maxImportLine is passed as tooLong, without its text, and read
// past rather than held.
func eachLine(r io.Reader, fn func(line int, text []byte, tooLong bool) error) error {
	br := bufio.NewReaderSize(r, maxImportLine)
	for line := 1; ; line++ {
		text, err := br.ReadSlice('\n')
		tooLong := false
		for errors.Is(err, bufio.ErrBufferFull) {
			tooLong = true
			_, err = br.ReadSlice('\n')
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read line %d: %w", line, err)
		}
		if line == 1 {
			text = bytes.TrimPrefix(text, []byte("\xef\xbb\xbf")) // a byte-order mark, as some exports on Windows begin
		}
		if tooLong || len(bytes.TrimSpace(text)) > 0 {
			if ferr := fn(line, text, tooLong); ferr != nil {
				return ferr
			}
		}
		if err != nil { // io.EOF
			return nil
		}
	}
}
