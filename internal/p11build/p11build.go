// Package p11build builds the PKCS#11 library and its test programs for the
// tests under p11module (abitest, suites): each builds what it needs once,
// into a temporary folder of its own.
package p11build

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Dir is the p11module folder, where the C sources are and every build
// runs; the paths the functions below take are relative to it.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", "p11module"))
}

// goTool is the go command: the one on PATH, else the running toolchain's.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// Run runs name with args in dir; the error carries the command's output.
func Run(dir string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// Library makes a temporary folder (its name starting with prefix) and
// builds into it the library, libopenhsm-pkcs11.so, and the real helper,
// openhsm-p11-helper, next to it where the library looks for it. work is
// returned whenever the folder was made, even with an error, for the caller
// to remove.
func Library(prefix string) (work, lib, helper string, err error) {
	work, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", "", "", err
	}
	lib = filepath.Join(work, "libopenhsm-pkcs11.so")
	helper = filepath.Join(work, "openhsm-p11-helper")
	gotool := goTool()
	for _, step := range [][]string{
		{"-buildmode=c-shared", "-o", lib, "."},
		{"-o", helper, "./cmd/openhsm-p11-helper"},
	} {
		if err = Run(Dir(), gotool, append([]string{"build"}, step...)...); err != nil {
			return work, lib, helper, err
		}
	}
	return work, lib, helper, nil
}

// GoProgram builds the Go package pkg (such as "./abitest/testdata/x") as
// the program out.
func GoProgram(pkg, out string) error {
	return Run(Dir(), goTool(), "build", "-o", out, pkg)
}

// CProgram compiles the C test program src with gcc, warnings as errors,
// against the library's headers and p11-kit's pkcs11.h, as the program out,
// linked with libs (such as "-ldl").
func CProgram(src, out string, libs ...string) error {
	args := []string{"-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O1", "-I" + Dir(), "-I" + filepath.Join(Dir(), "testdata"),
		"-I/usr/include/p11-kit-1", "-o", out, src}
	return Run(Dir(), "gcc", append(args, libs...)...)
}
