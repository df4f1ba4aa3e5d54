package login

import "net/http"

// scopeText is a scope as the consent page explains it.
type scopeText struct{ Name, Text string }

var scopeTexts = map[string]string{
	"openid":         "Know who you are: your user ID, roles and attributes",
	"profile":        "See your username",
	"email":          "See your email address",
	"offline_access": "Keep access while you are away (until you withdraw it)",
}

func describeScopes(scopes []string) []scopeText {
	out := make([]scopeText, 0, len(scopes))
	for _, s := range scopes {
		text, ok := scopeTexts[s]
		if !ok {
			text = "Use the “" + s + "” permission"
		}
		out = append(out, scopeText{Name: s, Text: text})
	}
	return out
}

func (h *Handler) showConsent(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	binding, _ := h.binder.Get(r)
	info, err := h.flow.ConsentInfo(r.Context(), id, binding, h.sessions.Current(r))
	if err != nil {
		h.fail(w, r, err, page{Title: "Allow access", AuthRequestID: id})
		return
	}
	h.render(w, http.StatusOK, "consent", page{Title: "Allow access?", ClientName: info.ClientName,
		AuthRequestID: id, Scopes: describeScopes(info.Scopes)})
}

func (h *Handler) submitConsent(w http.ResponseWriter, r *http.Request) {
	id := r.PostFormValue("authRequestID")
	binding, _ := h.binder.Get(r)
	next, err := h.flow.Consent(r.Context(), id, binding, h.sessions.Current(r), r.PostFormValue("decision") == "allow")
	if err != nil {
		h.fail(w, r, err, page{Title: "Allow access", AuthRequestID: id})
		return
	}
	h.follow(w, r, next)
}
