package model

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A table with what the KMS model has not: constrained map keys and
// values, maps of structures, a sensitive map, lists of lists. The
// validator must handle them the way AWS does for other services.
func synthetic(t *testing.T) *table {
	tb := &table{
		ops: map[string]*Operation{"Op": {Name: "Op", Input: "Req"}},
		shapes: map[string]*Shape{
			"Req": {Name: "Req", Type: TypeStructure, Members: []Member{
				{Name: "Weights", Shape: "WeightMap"},
				{Name: "Things", Shape: "ThingMap"},
				{Name: "Secrets", Shape: "SecretMap"},
				{Name: "Grid", Shape: "Grid"},
				{Name: "Inner", Shape: "Inner"},
				{Name: "When", Shape: "When"},
				{Name: "Big", Shape: "Big"},
			}},
			"WeightMap": {Name: "WeightMap", Type: TypeMap, Key: "Version", Value: "Weight", Min: bound(1), Max: bound(2)},
			"Version":   {Name: "Version", Type: TypeString, Min: bound(1), Max: bound(4), Pattern: `[0-9]+`},
			"Weight":    {Name: "Weight", Type: TypeInteger, Min: bound(0), Max: bound(100)},
			"ThingMap":  {Name: "ThingMap", Type: TypeMap, Key: "Name", Value: "Inner"},
			"Name":      {Name: "Name", Type: TypeString},
			"Inner": {Name: "Inner", Type: TypeStructure, Members: []Member{
				{Name: "Id", Shape: "Version", Required: true},
				{Name: "Flag", Shape: "Flag"},
			}},
			"Flag":      {Name: "Flag", Type: TypeBoolean},
			"SecretMap": {Name: "SecretMap", Type: TypeMap, Key: "Version", Value: "Secret"},
			"Secret":    {Name: "Secret", Type: TypeString, Sensitive: true, Min: bound(2)},
			"Grid":      {Name: "Grid", Type: TypeList, Member: "Row", Max: bound(2)},
			"Row":       {Name: "Row", Type: TypeList, Member: "Weight", Min: bound(1)},
			"When":      {Name: "When", Type: TypeTimestamp},
			"Big":       {Name: "Big", Type: TypeLong, Max: bound(1 << 40)},
		},
	}
	require.NoError(t, tb.resolve())
	return tb
}

func TestSyntheticTable(t *testing.T) {
	tb := synthetic(t)
	for _, r := range []struct {
		body, msg string
	}{
		{`{"Weights":{"1":50,"2":100},"Things":{"a":{"Id":"7","Flag":true}},"Secrets":{"1":"xy"},"Grid":[[1],[2,3]],"When":0,"Big":1099511627776}`, ""},
		// Map keys: the form of boto3 issue 2601 and serverless-secrets
		// issue 39 (AWS's "Map keys must satisfy constraint: [...]").
		{`{"Weights":{"v1":5}}`,
			"1 validation error detected: Value '{v1=5}' at 'weights' failed to satisfy constraint: Map keys must satisfy constraint: " +
				"[Member must have length less than or equal to 4, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [0-9]+]"},
		{`{"Weights":{"1":101}}`,
			"1 validation error detected: Value '{1=101}' at 'weights' failed to satisfy constraint: Map value must satisfy constraint: " +
				"[Member must have value less than or equal to 100, Member must have value greater than or equal to 0]"},
		{`{"Weights":{}}`,
			"1 validation error detected: Value '{}' at 'weights' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{`{"Weights":{"1":1,"2":2,"3":3}}`,
			"1 validation error detected: Value '{1=1, 2=2, 3=3}' at 'weights' failed to satisfy constraint: Member must have length less than or equal to 2"},
		{`{"Things":{"b":{"Flag":true},"a":{"Id":"x"}}}`,
			"2 validation errors detected: Value 'x' at 'things.a.id' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9]+; " +
				"Value null at 'things.b.id' failed to satisfy constraint: Member must not be null"},
		{`{"Things":{"a":null}}`,
			"1 validation error detected: Value null at 'things.a' failed to satisfy constraint: Member must not be null"},
		// A sensitive map: "Value at 'environment.variables' failed to
		// satisfy constraint: Map keys must satisfy constraint: [...]"
		// (Lambda, serverless-secrets issue 39).
		{`{"Secrets":{"k":"xy"}}`,
			"1 validation error detected: Value at 'secrets' failed to satisfy constraint: Map keys must satisfy constraint: " +
				"[Member must have length less than or equal to 4, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [0-9]+]"},
		{`{"Secrets":{"1":"x"}}`,
			"1 validation error detected: Value at 'secrets' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length greater than or equal to 2]"},
		{`{"Grid":[[1],[],[2]]}`,
			"2 validation errors detected: Value '[[1], [], [2]]' at 'grid' failed to satisfy constraint: Member must have length less than or equal to 2; " +
				"Value '[]' at 'grid.2.member' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{`{"Grid":[[1,101]]}`,
			"1 validation error detected: Value '[1, 101]' at 'grid.1.member' failed to satisfy constraint: Member must satisfy constraint: " +
				"[Member must have value less than or equal to 100, Member must have value greater than or equal to 0]"},
		{`{"Inner":{}}`,
			"1 validation error detected: Value null at 'inner.id' failed to satisfy constraint: Member must not be null"},
		{`{"Big":1099511627777}`,
			"1 validation error detected: Value '1099511627777' at 'big' failed to satisfy constraint: Member must have value less than or equal to 1099511627776"},
	} {
		got, err := tb.validate("Op", []byte(r.body))
		if r.msg == "" {
			require.Nil(t, err, r.body)
			require.NotNil(t, got)
			continue
		}
		require.NotNil(t, err, r.body)
		assert.Equal(t, ValidationException, err.Exception, r.body)
		assert.Equal(t, r.msg, err.Message, r.body)
	}
	// A long beyond 32 bits decodes; beyond 64 it does not.
	_, err := tb.validate("Op", []byte(`{"Big":9223372036854775808}`))
	require.NotNil(t, err)
	assert.Equal(t, "NUMBER_VALUE can not be converted to a Long", err.Message)
	// A structure prints as the AWS service prints one.
	in := tb.shapes["Inner"]
	assert.Equal(t, "Inner(id=7, flag=null)", render(in, Object{"Id": "7"}))
}

func TestResolveRefuses(t *testing.T) {
	for name, shapes := range map[string]map[string]*Shape{
		"dangling member":       {"Req": {Name: "Req", Type: TypeStructure, Members: []Member{{Name: "A", Shape: "Gone"}}}},
		"dangling element":      {"Req": {Name: "Req", Type: TypeStructure}, "L": {Name: "L", Type: TypeList, Member: "Gone"}},
		"unknown type":          {"Req": {Name: "Req", Type: "double"}},
		"misnamed":              {"Req": {Name: "Other", Type: TypeStructure}},
		"bad pattern":           {"Req": {Name: "Req", Type: TypeStructure}, "S": {Name: "S", Type: TypeString, Pattern: `(?!x)`}},
		"input not a structure": {"Req": {Name: "Req", Type: TypeString}},
	} {
		tb := &table{ops: map[string]*Operation{"Op": {Name: "Op", Input: "Req"}}, shapes: shapes}
		assert.Error(t, tb.resolve(), name)
	}
}
