package storage

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// RolePolicy is the enrolment policy for users who hold a role. It takes
// the place of the client's policy for them.
type RolePolicy struct {
	Role             string    `db:"role" json:"role"`
	EnrollmentPolicy string    `db:"enrollment_policy" json:"enrollment_policy"`
	UpdatedAt        time.Time `db:"updated_at" json:"updated_at"`
}

// SetRolePolicy sets, or replaces, the enrolment policy of a role.
func (d *DB) SetRolePolicy(ctx context.Context, role, policy string) error {
	if strings.TrimSpace(role) == "" || role != strings.TrimSpace(role) {
		return fmt.Errorf("%w: role %q: empty, or with spaces around it", ErrInvalid, role)
	}
	if !slices.Contains(EnrollmentPolicies, policy) {
		return fmt.Errorf("%w: enrollment_policy %q: use one of %v", ErrInvalid, policy, EnrollmentPolicies)
	}
	_, err := d.exec(ctx, d.w, `INSERT INTO role_policies (role, enrollment_policy, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (role) DO UPDATE SET enrollment_policy = excluded.enrollment_policy, updated_at = excluded.updated_at`,
		role, policy, d.Now())
	if err != nil {
		return fmt.Errorf("set policy of role %q: %w", role, err)
	}
	return nil
}

// DeleteRolePolicy removes a role's policy: its users get the client's again.
func (d *DB) DeleteRolePolicy(ctx context.Context, role string) error {
	n, err := d.exec(ctx, d.w, `DELETE FROM role_policies WHERE role = ?`, role)
	if err != nil {
		return fmt.Errorf("delete policy of role %q: %w", role, err)
	}
	if n == 0 {
		return fmt.Errorf("policy of role %q: %w", role, ErrNotFound)
	}
	return nil
}

// RolePolicies lists the roles that have a policy, by role.
func (d *DB) RolePolicies(ctx context.Context) ([]RolePolicy, error) {
	var out []RolePolicy
	if err := d.sel(ctx, d.r, &out, `SELECT role, enrollment_policy, updated_at FROM role_policies ORDER BY role`); err != nil {
		return nil, fmt.Errorf("list role policies: %w", err)
	}
	return out, nil
}

// EnrollmentPolicyFor is the policy for a user without a second factor
// signing in to client c: the strictest policy among the user's roles (in
// the order of EnrollmentPolicies, refuse first), else the client's.
func (d *DB) EnrollmentPolicyFor(ctx context.Context, u *User, c *Client) (string, error) {
	if len(u.Roles) == 0 {
		return c.EnrollmentPolicy, nil
	}
	all, err := d.RolePolicies(ctx)
	if err != nil {
		return "", err
	}
	best := -1
	for _, p := range all {
		if i := slices.Index(EnrollmentPolicies, p.EnrollmentPolicy); slices.Contains(u.Roles, p.Role) && (best < 0 || i < best) {
			best = i
		}
	}
	if best < 0 {
		return c.EnrollmentPolicy, nil
	}
	return EnrollmentPolicies[best], nil
}
