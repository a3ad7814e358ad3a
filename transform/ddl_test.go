package transform

import (
	"testing"
)

func TestDDL(t *testing.T) {
	m := loadMapping(t, "testdata/mapping.yaml")
	design := loadMapping(t, "testdata/design_collection.yaml")
	got := DDL([]*Mapping{design, m})
	golden(t, "ddl.golden", []byte(got))
	if again := DDL([]*Mapping{design, m}); again != got {
		t.Fatal("DDL is not deterministic")
	}
}

func TestTables(t *testing.T) {
	m := loadMapping(t, "testdata/mapping.yaml")
	var names []string
	for _, tb := range m.Tables() {
		names = append(names, tb.Name+"<"+tb.Parent)
	}
	want := []string{"shop.orders<", "shop.order_lines<shop.orders", "shop.order_line_discounts<shop.order_lines", "shop.order_notes<shop.orders"}
	if len(names) != len(want) {
		t.Fatalf("tables %v", names)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("tables %v, want %v", names, want)
		}
	}
}
