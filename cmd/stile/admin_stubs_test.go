package main

import "testing"

func testAdminUsers(t *testing.T, f *adminFixture)           {}
func testAdminPatchPut(t *testing.T, f *adminFixture)        {}
func testAdminETags(t *testing.T, f *adminFixture)           {}
func testAdminSignIn(t *testing.T, f *adminFixture)          {}
func testAdminRevocation(t *testing.T, f *adminFixture)      {}
func testAdminSessionsFactors(t *testing.T, f *adminFixture) {}
func testAdminPagination(t *testing.T, f *adminFixture)      {}
func testAdminEvents(t *testing.T, f *adminFixture)          {}
func testAdminHostile(t *testing.T, f *adminFixture)         {}
