// Command kms makes a key, encrypts and decrypts with it; the AWS_* exports
// of `make run` say where and as whom. (README.md shows this file.)
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

func main() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	c := kms.NewFromConfig(cfg)
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("demo")})
	if err != nil {
		log.Fatal(err)
	}
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("hello"),
		EncryptionContext: map[string]string{"app": "demo"}})
	if err != nil {
		log.Fatal(err)
	}
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob,
		EncryptionContext: map[string]string{"app": "demo"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", dec.Plaintext)
}
