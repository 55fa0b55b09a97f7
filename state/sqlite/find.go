package sqlite

import (
	"strings"

	"github.com/openhsm/openhsm/state"
)

// buildFind returns the SQL and arguments of a Find.
//
// Without VisibleTo it is one select on objects, which SQLite serves from
// the index on the most selective field given (label, CKA_ID, class, owner).
//
// With VisibleTo it is the UNION of two indexed selects, written as UNION
// ALL of two disjoint branches so no de-duplication is needed:
//
//   - the user's own objects (owner = U), served by the (owner, ...) indexes;
//   - objects owned by someone else and shared with U. When a label or a
//     CKA_ID is given the join starts from objects (label or ckaid index)
//     and probes the shares primary key; otherwise it starts from U's shares
//     (shares_user index) and looks up each object by ID. CROSS JOIN fixes
//     that order so it does not depend on the planner's statistics. A
//     class-only lookup thus costs one probe per object shared with U, not
//     one per object of that class, which is the better bound because
//     classes are few and shares are bounded by what U was given.
//
// The condition owner <> U keeps the branches disjoint even if an owner
// is listed in its own object's shares.
func buildFind(q state.Query) (string, []any) {
	var conds []string
	var args []any
	if q.Owner != "" {
		conds = append(conds, "o.owner = ?")
		args = append(args, q.Owner)
	}
	if q.Class != nil {
		conds = append(conds, "o.class = ?")
		args = append(args, int64(*q.Class))
	}
	if q.KeyType != nil {
		if *q.KeyType == ^uint64(0) {
			// Object.KeyType() reports ^0 for objects that are not keys.
			conds = append(conds, "o.key_type IS NULL")
		} else {
			conds = append(conds, "o.key_type = ?")
			args = append(args, int64(*q.KeyType))
		}
	}
	if q.Label != nil {
		if len(q.Label) == 0 {
			// A literal: never at the mercy of how an empty slice binds.
			conds = append(conds, "o.label = x''")
		} else {
			conds = append(conds, "o.label = ?")
			args = append(args, q.Label)
		}
	}
	if q.ID != nil {
		if len(q.ID) == 0 {
			conds = append(conds, "o.ckaid = x''")
		} else {
			conds = append(conds, "o.ckaid = ?")
			args = append(args, q.ID)
		}
	}
	limit := int64(-1)
	if q.Limit > 0 {
		limit = int64(q.Limit)
	}

	var b strings.Builder
	if q.VisibleTo == "" {
		b.WriteString("SELECT " + objectCols + "\nFROM objects o")
		if len(conds) > 0 {
			b.WriteString("\nWHERE " + strings.Join(conds, " AND "))
		}
		b.WriteString("\nORDER BY o.id LIMIT ?")
		return b.String(), append(args, limit)
	}

	u := q.VisibleTo
	all := make([]any, 0, 2*len(args)+4)

	b.WriteString("SELECT " + objectCols + "\nFROM objects o\nWHERE o.owner = ?")
	all = append(all, u)
	for _, c := range conds {
		b.WriteString(" AND " + c)
	}
	all = append(all, args...)

	if q.Label != nil || q.ID != nil {
		b.WriteString("\nUNION ALL\nSELECT " + objectCols)
		b.WriteString("\nFROM objects o CROSS JOIN shares s ON s.object_id = o.id AND s.user = ?")
	} else {
		// s.object_id rather than o.id: the same value, but SQLite then sees
		// that shares_user already yields it in order, and needs no sort.
		b.WriteString("\nUNION ALL\nSELECT s.object_id, " + objectRest)
		b.WriteString("\nFROM shares s CROSS JOIN objects o ON o.id = s.object_id AND s.user = ?")
	}
	b.WriteString("\nWHERE o.owner <> ?")
	all = append(all, u, u)
	for _, c := range conds {
		b.WriteString(" AND " + c)
	}
	all = append(all, args...)

	b.WriteString("\nORDER BY 1 LIMIT ?")
	return b.String(), append(all, limit)
}
