// Command p11module is libopenhsm-pkcs11.so, the PKCS#11 library, built with
// go build -buildmode=c-shared. The C files in this directory are the entry
// points: they check pointers, marshal each call into a frame and hand it to
// goCall below (or, in a forked child, to openhsm-p11-helper over a socket).
// Everything with PKCS#11 semantics is in package core. See
// docs/pkcs11-library.md.
package main

/*
#cgo CFLAGS: -I/usr/include/p11-kit-1 -Wall -Werror -O2
#cgo LDFLAGS: -ldl -lpthread
#include <stdlib.h>
*/
import "C"

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"unsafe"

	"github.com/openhsm/openhsm/p11module/core"
)

// ckrGeneralError is CKR_GENERAL_ERROR.
const ckrGeneralError = 0x5

// goCall answers one request frame: it copies the request into Go memory,
// calls the dispatcher and returns the reply in memory from C.malloc, which
// the C side frees. If the dispatcher panics the reply is a bare
// CKR_GENERAL_ERROR; if the reply cannot be allocated *resp stays NULL.
//
//export goCall
func goCall(req *C.uchar, reqLen C.size_t, resp **C.uchar, respLen *C.size_t) {
	*resp = nil
	*respLen = 0
	in := make([]byte, int(reqLen))
	if reqLen > 0 {
		copy(in, unsafe.Slice((*byte)(unsafe.Pointer(req)), int(reqLen)))
	}
	out := call(in)
	p := C.malloc(C.size_t(len(out)))
	if p == nil {
		return
	}
	copy(unsafe.Slice((*byte)(p), len(out)), out)
	*resp = (*C.uchar)(p)
	*respLen = C.size_t(len(out))
}

// goSnapshot gives the C layer what forked children will need (core.Snapshot):
// it returns 0 with the handoff in *blob (memory from C.malloc, which C
// wipes and frees) and the open log in *logFD (-1 for none), or -1 with the
// reason in *msg (from C.malloc, or NULL). The Go copy of the handoff is
// cleared.
//
//export goSnapshot
func goSnapshot(blob **C.uchar, blobLen *C.size_t, logFD *C.int, msg **C.char) (rc C.int) {
	*blob, *blobLen, *logFD, *msg = nil, 0, -1, nil
	defer func() {
		if r := recover(); r != nil {
			*msg = C.CString(fmt.Sprint("panic: ", r))
			rc = -1
		}
	}()
	b, fd, err := core.Snapshot()
	if err != nil {
		*msg = C.CString(err.Error())
		return -1
	}
	defer clear(b)
	p := C.malloc(C.size_t(len(b)))
	if p == nil {
		if fd >= 0 {
			syscall.Close(fd)
		}
		*msg = C.CString("out of memory")
		return -1
	}
	copy(unsafe.Slice((*byte)(p), len(b)), b)
	*blob, *blobLen, *logFD = (*C.uchar)(p), C.size_t(len(b)), C.int(fd)
	return 0
}

// call runs the dispatcher, turning a panic (or a reply too short to hold
// a CK_RV) into a bare CKR_GENERAL_ERROR reply.
func call(req []byte) (out []byte) {
	defer func() {
		if r := recover(); r != nil {
			out = bareReply(ckrGeneralError)
		}
	}()
	out = core.Default.Call(req)
	if len(out) < 8 {
		out = bareReply(ckrGeneralError)
	}
	return out
}

func bareReply(rv uint64) []byte {
	return binary.LittleEndian.AppendUint64(nil, rv)
}

func main() {}
