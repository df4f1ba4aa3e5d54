package admin

import (
	"bytes"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/stile-id/stile/account"
)

// maxImportBody bounds one import request, as the server bounds every
// body (cmd/stile's limitBody): a few thousand accounts. More go in
// several requests; a re-run skips what is already imported.
const maxImportBody = 1 << 20

func (h *Handler) mountImport(s *mux.Router) {
	s.Handle("/users:import", h.api(h.importUsers)).Methods(http.MethodPost)
}

// importUsers imports accounts from JSON Lines (account.Import) and
// answers its report. The body is read whole first, so a body over the
// limit imports nothing rather than its first batches.
func (h *Handler) importUsers(w http.ResponseWriter, r *http.Request, c *Caller) error {
	b, err := readBody(w, r, typeNDJSON, maxImportBody, false)
	if err != nil {
		return err
	}
	rep, err := h.accounts.Import(r.Context(), actor(r, c), bytes.NewReader(b), account.ImportOptions{})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}
