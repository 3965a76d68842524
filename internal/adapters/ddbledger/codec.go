package ddbledger

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sgrules/sgrules/internal/reconcile"
	"github.com/sgrules/sgrules/pkg/rules"
)

// storedPerm is one element of a source's perms attribute.
type storedPerm struct {
	Key         string `json:"key"`
	Description string `json:"description,omitempty"`
	Rule        string `json:"rule"`
	// Source is set only when the owner is not the record's own source.
	Source string `json:"source,omitempty"`
	// ExpiresAt is the permission's deadline (RFC 3339, UTC), when it has
	// one: a sweep that declares the permission from this record (an
	// unchanged file, a custom resource, a source keeping what it applied)
	// must still see it expire.
	ExpiresAt string `json:"expiresAt,omitempty"`
}

// encodeSource encodes a source record as the item with key (l.key of
// kindSource and the source's key).
func encodeSource(key map[string]types.AttributeValue, s reconcile.SourceRecord) (map[string]types.AttributeValue, error) {
	item := key
	putS(item, "kind", string(s.Kind))
	putS(item, "etag", s.ETag)
	putS(item, "versionId", s.VersionID)
	putS(item, "commit", s.Commit)
	putS(item, "status", string(s.Status))
	putSL(item, "diagnostics", s.Diagnostics)
	putS(item, "message", s.Message)
	if !s.AppliedAt.IsZero() {
		putS(item, "appliedAt", s.AppliedAt.UTC().Format(time.RFC3339Nano))
	}
	putSL(item, "exclusive", s.Exclusive)
	if s.Static {
		item["static"] = &types.AttributeValueMemberBOOL{Value: true}
	}
	if len(s.Permissions) > 0 {
		sp := make([]storedPerm, len(s.Permissions))
		for i, p := range s.Permissions {
			sp[i] = storedPerm{Key: p.Key.String(), Description: p.Description, Rule: p.Owner.Rule}
			if !p.ExpiresAt.IsZero() {
				sp[i].ExpiresAt = rules.FormatExpiresAt(p.ExpiresAt)
			}
			if p.Owner.Source != s.Key {
				sp[i].Source = p.Owner.Source
			}
		}
		raw, err := json.Marshal(sp)
		if err != nil {
			return nil, fmt.Errorf("encode source %s: %w", s.Key, err)
		}
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(raw); err != nil {
			return nil, fmt.Errorf("encode source %s: %w", s.Key, err)
		}
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("encode source %s: %w", s.Key, err)
		}
		item["perms"] = &types.AttributeValueMemberB{Value: buf.Bytes()}
	}
	return item, nil
}

// decodeSource decodes a source item (sk = "source#<key>").
func decodeSource(item map[string]types.AttributeValue) (reconcile.SourceRecord, error) {
	key, ok := strings.CutPrefix(getS(item, "sk"), kindSource)
	if !ok || key == "" {
		return reconcile.SourceRecord{}, fmt.Errorf("decode source: sk %q is not a source", getS(item, "sk"))
	}
	s := reconcile.SourceRecord{
		Key:         key,
		Kind:        reconcile.SourceKind(getS(item, "kind")),
		ETag:        getS(item, "etag"),
		VersionID:   getS(item, "versionId"),
		Commit:      getS(item, "commit"),
		Status:      reconcile.Status(getS(item, "status")),
		Diagnostics: getSL(item, "diagnostics"),
		Message:     getS(item, "message"),
		Exclusive:   getSL(item, "exclusive"),
	}
	if b, ok := item["static"].(*types.AttributeValueMemberBOOL); ok {
		s.Static = b.Value
	}
	var err error
	if s.Version, err = getN(item, "ver"); err != nil {
		return s, fmt.Errorf("decode source %s: %w", s.Key, err)
	}
	if at := getS(item, "appliedAt"); at != "" {
		if s.AppliedAt, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return s, fmt.Errorf("decode source %s: appliedAt: %w", s.Key, err)
		}
	}
	if b, ok := item["perms"].(*types.AttributeValueMemberB); ok {
		zr, err := gzip.NewReader(bytes.NewReader(b.Value))
		if err != nil {
			return s, fmt.Errorf("decode source %s: perms: %w", s.Key, err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			return s, fmt.Errorf("decode source %s: perms: %w", s.Key, err)
		}
		var sp []storedPerm
		if err := json.Unmarshal(raw, &sp); err != nil {
			return s, fmt.Errorf("decode source %s: perms: %w", s.Key, err)
		}
		s.Permissions = make([]rules.Permission, len(sp))
		for i, p := range sp {
			k, err := rules.ParseKey(p.Key)
			if err != nil {
				return s, fmt.Errorf("decode source %s: %w", s.Key, err)
			}
			src := p.Source
			if src == "" {
				src = s.Key
			}
			s.Permissions[i] = rules.Permission{Key: k, Description: p.Description, Owner: rules.Owner{Source: src, Rule: p.Rule}}
			if p.ExpiresAt != "" {
				at, err := time.Parse(time.RFC3339Nano, p.ExpiresAt)
				if err != nil {
					return s, fmt.Errorf("decode source %s: %s: expiresAt: %w", s.Key, p.Key, err)
				}
				s.Permissions[i].ExpiresAt = at.UTC()
			}
		}
	}
	return s, nil
}

// salvageSource is what can be kept of a source item that does not decode:
// its key, kind and version (so it can be replaced by a conditional write),
// with status unknown; a zero record if not even that.
func salvageSource(item map[string]types.AttributeValue) reconcile.SourceRecord {
	key, ok := strings.CutPrefix(getS(item, "sk"), kindSource)
	if !ok || key == "" {
		return reconcile.SourceRecord{}
	}
	ver, err := getN(item, "ver")
	if err != nil {
		return reconcile.SourceRecord{}
	}
	kind := reconcile.SourceKind(getS(item, "kind"))
	if kind != reconcile.KindCFN {
		kind = reconcile.KindFile
	}
	return reconcile.SourceRecord{Key: key, Kind: kind, Status: reconcile.StatusUnknown,
		Message: "ledger record could not be decoded", Version: ver}
}

// encodePermission encodes an owned permission as the item with key (l.key
// of kindPerm and the permission's key).
func encodePermission(key map[string]types.AttributeValue, p reconcile.OwnedPermission) (map[string]types.AttributeValue, error) {
	if p.Key.GroupID == "" {
		return nil, fmt.Errorf("encode permission %s: no group id", p.Key)
	}
	item := key
	putS(item, "ruleId", p.RuleID)
	putS(item, "description", p.Description)
	owners := make(map[string]types.AttributeValue, len(p.Owners))
	for o, d := range p.Owners {
		owners[o.String()] = &types.AttributeValueMemberS{Value: d}
	}
	item["owners"] = &types.AttributeValueMemberM{Value: owners}
	return item, nil
}

func decodePermission(item map[string]types.AttributeValue) (reconcile.OwnedPermission, error) {
	sk := getS(item, "sk")
	rest, ok := strings.CutPrefix(sk, kindPerm)
	if !ok {
		return reconcile.OwnedPermission{}, fmt.Errorf("decode permission: sk %q is not a permission", sk)
	}
	k, err := rules.ParseKey(rest)
	if err != nil {
		return reconcile.OwnedPermission{}, fmt.Errorf("decode permission: %w", err)
	}
	p := reconcile.OwnedPermission{
		Key:         k,
		RuleID:      getS(item, "ruleId"),
		Description: getS(item, "description"),
		Owners:      map[rules.Owner]string{},
	}
	if m, ok := item["owners"].(*types.AttributeValueMemberM); ok {
		for o, v := range m.Value {
			if s, ok := v.(*types.AttributeValueMemberS); ok {
				p.Owners[rules.ParseOwner(o)] = s.Value
			}
		}
	}
	if p.Version, err = getN(item, "ver"); err != nil {
		return p, fmt.Errorf("decode permission %s: %w", k, err)
	}
	return p, nil
}

// putS stores a non-empty string.
func putS(item map[string]types.AttributeValue, name, v string) {
	if v != "" {
		item[name] = &types.AttributeValueMemberS{Value: v}
	}
}

// putSL stores a non-empty list of strings.
func putSL(item map[string]types.AttributeValue, name string, vs []string) {
	if len(vs) == 0 {
		return
	}
	l := make([]types.AttributeValue, len(vs))
	for i, v := range vs {
		l[i] = &types.AttributeValueMemberS{Value: v}
	}
	item[name] = &types.AttributeValueMemberL{Value: l}
}

func getS(item map[string]types.AttributeValue, name string) string {
	if s, ok := item[name].(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func getSL(item map[string]types.AttributeValue, name string) []string {
	l, ok := item[name].(*types.AttributeValueMemberL)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(l.Value))
	for _, v := range l.Value {
		if s, ok := v.(*types.AttributeValueMemberS); ok {
			out = append(out, s.Value)
		}
	}
	return out
}

func getN(item map[string]types.AttributeValue, name string) (int64, error) {
	n, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, nil
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("attribute %s: %w", name, err)
	}
	return v, nil
}
