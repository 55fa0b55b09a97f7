package suite

import (
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func tag(k, v string) types.Tag { return types.Tag{TagKey: aws.String(k), TagValue: aws.String(v)} }

// tagsOf is a key's tags as a map.
func tagsOf(t *testing.T, c *kms.Client, keyID string) map[string]string {
	t.Helper()
	out := map[string]string{}
	p := kms.NewListResourceTagsPaginator(c, &kms.ListResourceTagsInput{KeyId: aws.String(keyID)})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		require.NoError(t, err)
		for _, tg := range page.Tags {
			k := aws.ToString(tg.TagKey)
			_, dup := out[k]
			assert.False(t, dup, "tag %s listed twice", k)
			out[k] = aws.ToString(tg.TagValue)
		}
	}
	return out
}

// testTags: TagResource, UntagResource and ListResourceTags; the aws:
// prefix, duplicate keys and the limit of 50 tags a key.
func testTags(t *testing.T, tg *target) {
	c := tg.kms()
	ctx := t.Context()
	m := createKey(t, c, &kms.CreateKeyInput{Tags: []types.Tag{tag("a", "1")}})
	arn := aws.ToString(m.Arn)
	assert.Equal(t, map[string]string{"a": "1"}, tagsOf(t, c, arn))

	_, err := c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(arn), Tags: []types.Tag{tag("b", "2"), tag("c", "")}})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"a": "1", "b": "2", "c": ""}, tagsOf(t, c, arn))
	_, err = c.TagResource(ctx, &kms.TagResourceInput{KeyId: m.KeyId, Tags: []types.Tag{tag("a", "9")}})
	require.NoError(t, err, "a tag key that exists takes the new value")
	assert.Equal(t, map[string]string{"a": "9", "b": "2", "c": ""}, tagsOf(t, c, arn))
	_, err = c.UntagResource(ctx, &kms.UntagResourceInput{KeyId: aws.String(arn), TagKeys: []string{"b", "no-such-tag"}})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"a": "9", "c": ""}, tagsOf(t, c, arn))

	t.Run("Refused", func(t *testing.T) {
		before := readKeys(t, c, []string{arn})
		_, err := c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(arn), Tags: []types.Tag{tag("ok", "1"), tag("aws:reserved", "x")}})
		requireErr[*types.TagException](t, err, anyMessage)
		_, err = c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(arn), Tags: []types.Tag{tag("d", "1"), tag("d", "2")}})
		requireErr[*types.TagException](t, err, anyMessage)
		assert.Equal(t, before, readKeys(t, c, []string{arn}))

		keys := listKeyARNs(t, c)
		_, err = c.CreateKey(ctx, &kms.CreateKeyInput{Tags: []types.Tag{tag("aws:reserved", "x")}})
		requireErr[*types.TagException](t, err, anyMessage)
		_, err = c.CreateKey(ctx, &kms.CreateKeyInput{Tags: []types.Tag{tag("e", "1"), tag("e", "1")}})
		requireErr[*types.TagException](t, err, anyMessage)
		assert.Equal(t, keys, listKeyARNs(t, c), "a refused CreateKey makes no key")

		missing := "31111111-2222-4333-8444-555555555555"
		_, err = c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(missing), Tags: []types.Tag{tag("x", "y")}})
		requireErr[*types.NotFoundException](t, err, "Key '"+keyARN(mainRegion, missing)+"' does not exist")
	})
	// Tag keys and values hold letters, digits, spaces and _ . : / = + - @
	// (the KMS developer guide's tagging rules); kms/model leaves the
	// characters to the operation.
	t.Run("Characters", func(t *testing.T) {
		k := aws.ToString(createKey(t, c, nil).Arn)
		before := readKeys(t, c, []string{k})
		for _, bad := range []types.Tag{tag("bad\x01key", "v"), tag("k", "bad\x00value")} {
			_, err := c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(k), Tags: []types.Tag{bad}})
			if assert.Error(t, err, "TagResource with %q=%q", aws.ToString(bad.TagKey), aws.ToString(bad.TagValue)) {
				requireErr[*types.TagException](t, err, anyMessage)
			}
		}
		assert.Equal(t, before, readKeys(t, c, []string{k}))
	})
	t.Run("Limit", func(t *testing.T) {
		k := aws.ToString(createKey(t, c, nil).Arn)
		var tags []types.Tag
		for i := range 50 {
			tags = append(tags, tag(fmt.Sprintf("t%02d", i), fmt.Sprint(i)))
		}
		_, err := c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(k), Tags: tags[:30]})
		require.NoError(t, err)
		_, err = c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(k), Tags: tags[30:]})
		require.NoError(t, err, "50 tags are allowed")
		assert.Len(t, tagsOf(t, c, k), 50)
		_, err = c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(k), Tags: []types.Tag{tag("t00", "new value")}})
		require.NoError(t, err, "changing a value adds no tag")
		before := readKeys(t, c, []string{k})
		_, err = c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(k), Tags: []types.Tag{tag("one-more", "x")}})
		requireErr[*types.LimitExceededException](t, err, anyMessage)
		assert.Equal(t, before, readKeys(t, c, []string{k}))

		keys := listKeyARNs(t, c)
		_, err = c.CreateKey(ctx, &kms.CreateKeyInput{Tags: append(tags, tag("one-more", "x"))})
		var te *types.TagException
		var le *types.LimitExceededException
		require.Error(t, err)
		assert.True(t, errors.As(err, &te) || errors.As(err, &le), "CreateKey with 51 tags: TagException or LimitExceededException, got %v", err)
		assert.Equal(t, keys, listKeyARNs(t, c))
		m := createKey(t, c, &kms.CreateKeyInput{Tags: tags})
		assert.Len(t, tagsOf(t, c, aws.ToString(m.Arn)), 50, "CreateKey takes 50 tags")

		// Paging.
		var got []string
		var marker *string
		for pages := 0; ; pages++ {
			require.Less(t, pages, 10)
			out, err := c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(k), Limit: aws.Int32(12), Marker: marker})
			require.NoError(t, err)
			assert.LessOrEqual(t, len(out.Tags), 12)
			for _, tg := range out.Tags {
				got = append(got, aws.ToString(tg.TagKey))
			}
			if !out.Truncated {
				assert.Nil(t, out.NextMarker)
				break
			}
			require.NotNil(t, out.NextMarker)
			marker = out.NextMarker
		}
		assert.Len(t, got, 50)
		_, err = c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(k), Marker: aws.String("not a marker")})
		requireErr[*types.InvalidMarkerException](t, err, anyMessage)
	})
}
