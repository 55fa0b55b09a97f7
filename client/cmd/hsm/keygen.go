package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/openhsm/openhsm/ck"

	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// keyGenerateAESCommand makes a token AES key of the crypto user who logs
// in: sensitive, not extractable, for encryption and decryption. It is how
// an XKS external key is made (docs/xks.md): the label is the external key
// ID, CKA_ID its version.
func (c *cli) keyGenerateAESCommand() *cobra.Command {
	var bits int
	var id string
	cmd := leaf("generate-aes LABEL [--bits 256] [--id ID]", "Generate an AES key for encryption and decryption (a crypto user)", []string{"LABEL"},
		func(cmd *cobra.Command, pos []string) error {
			return c.keyGenerateAES(cmd.Context(), pos[0], bits, id, cmd.Flags().Changed("id"))
		})
	cmd.Long = `Generate a token AES key owned by the crypto user who logs in: sensitive,
not extractable, allowed to encrypt and decrypt. LABEL becomes CKA_LABEL and
--id, as text, CKA_ID (an XKS proxy reads CKA_ID as the key's version).`
	cmd.Example = `  hsm key generate-aes my-xks-key --bits 256 --json`
	cmd.Flags().IntVar(&bits, "bits", 256, "key size: 128, 192 or 256")
	cmd.Flags().StringVar(&id, "id", "", "CKA_ID, as text (say, a version number)")
	setRole(cmd, roleAny)
	return cmd
}

func (c *cli) keyGenerateAES(ctx context.Context, label string, bits int, id string, withID bool) error {
	if bits != 128 && bits != 192 && bits != 256 {
		return usagef("key generate-aes: --bits %d: want 128, 192 or 256", bits)
	}
	if label == "" || len(label) > 128 {
		return usagef("key generate-aes: LABEL must be 1 to 128 bytes")
	}
	if withID && (id == "" || len(id) > 128) {
		return usagef("key generate-aes: --id must be 1 to 128 bytes")
	}
	tmpl := object.Template{
		{Type: ck.CKA_CLASS, Value: object.EncodeUlong(ck.CKO_SECRET_KEY)},
		{Type: ck.CKA_KEY_TYPE, Value: object.EncodeUlong(ck.CKK_AES)},
		{Type: ck.CKA_VALUE_LEN, Value: object.EncodeUlong(uint64(bits / 8))},
		{Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)},
		{Type: ck.CKA_SENSITIVE, Value: object.EncodeBool(true)},
		{Type: ck.CKA_EXTRACTABLE, Value: object.EncodeBool(false)},
		{Type: ck.CKA_ENCRYPT, Value: object.EncodeBool(true)},
		{Type: ck.CKA_DECRYPT, Value: object.EncodeBool(true)},
		{Type: ck.CKA_LABEL, Value: []byte(label)},
	}
	if withID {
		tmpl = append(tmpl, object.Attribute{Type: ck.CKA_ID, Value: []byte(id)})
	}
	hc, done, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	oid, err := hc.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, tmpl)
	if err != nil {
		return fmt.Errorf("key generate-aes %q: %w", label, err)
	}
	return c.say(map[string]any{"id": oid, "label": label, "bits": bits}, "generated AES-%d key %d labelled %q", bits, oid, label)
}
