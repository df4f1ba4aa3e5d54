package admin

import "github.com/gorilla/mux"

// mountImport adds POST /users:import once account.Import exists.
func (h *Handler) mountImport(*mux.Router) {}
