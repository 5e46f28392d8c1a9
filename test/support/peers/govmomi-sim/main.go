// Command vcsim-launcher starts govmomi's vCenter simulator (from Debian's
// golang-github-vmware-govmomi-dev) on a loopback port for Plinth's vSphere provider tests.
// It prints the SDK URL on stdout, then serves until its standard input closes.
// The password comes from VCSIM_PASSWORD so that it never shows in ps.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net/url"
	"os"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	user := flag.String("user", "user", "user name the simulator accepts")
	flag.Parse()

	model := simulator.VPX()
	if err := model.Create(); err != nil {
		fmt.Fprintln(os.Stderr, "creating the inventory:", err)
		os.Exit(1)
	}
	defer model.Remove()

	model.Service.Listen = &url.URL{Host: "127.0.0.1:0", User: url.UserPassword(*user, os.Getenv("VCSIM_PASSWORD"))}
	server := model.Service.NewServer()
	defer server.Close()

	sdk := *server.URL
	sdk.User = nil
	fmt.Println(sdk.String())

	// Serve until the test closes our standard input (or dies).
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}
