// Command gotypes writes, as JSON, the Go type graph of core/v1 PodTemplateSpec from the k8s.io/api
// module: every struct's fields in declaration order with their Go names, JSON names and types, and how
// each type prints in reflect's Type.String(). graylane's pod-template hash (api/podtemplatehash.py)
// walks this graph to print a template the way the Deployment controller's hash input does.
//
// Run it through `make gotypes` (offline, from the Go module cache the cluster build fills); the output is
// committed like the CRDs, with the module versions it was made from.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

type field struct {
	Go       string `json:"go"`
	JSON     string `json:"json"`
	Type     string `json:"type"`
	Exported bool   `json:"exported"`
	// Inline marks an embedded struct whose fields Go's encoding/json reads from the parent object.
	Inline bool `json:"inline,omitempty"`
}

type typeInfo struct {
	Kind string `json:"kind"`
	// Elem is the element type of pointers, slices and maps; Key the key type of maps.
	Elem   string  `json:"elem,omitempty"`
	Key    string  `json:"key,omitempty"`
	Fields []field `json:"fields,omitempty"`
	// Custom marks types with their own JSON decoding (Quantity, IntOrString, Time...): the reader needs
	// a hand-written decoder for each.
	Custom bool `json:"custom,omitempty"`
}

type output struct {
	Provenance map[string]string   `json:"provenance"`
	Root       string              `json:"root"`
	Types      map[string]typeInfo `json:"types"`
}

var unmarshaler = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()

type walker struct {
	types map[string]typeInfo
	// seen maps a printed name to the type it names, so two types printing alike are caught.
	seen map[string]reflect.Type
}

func (w *walker) visit(t reflect.Type) string {
	name := t.String()
	if prev, ok := w.seen[name]; ok {
		if prev != t {
			panic(fmt.Sprintf("two types print as %q: %s and %s", name, prev.PkgPath(), t.PkgPath()))
		}
		return name
	}
	w.seen[name] = t
	info := typeInfo{Kind: t.Kind().String()}
	if t.Name() != "" && reflect.PointerTo(t).Implements(unmarshaler) {
		info.Custom = true
	}
	w.types[name] = info // placeholder first: the graph has cycles (JSONSchemaProps-like types)
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		info.Elem = w.visit(t.Elem())
	case reflect.Map:
		info.Key = w.visit(t.Key())
		info.Elem = w.visit(t.Elem())
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := jsonName(f)
			info.Fields = append(info.Fields, field{
				Go: f.Name, JSON: name, Type: w.visit(f.Type), Exported: f.IsExported(),
				Inline: f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct,
			})
		}
	case reflect.Bool, reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
	default:
		panic(fmt.Sprintf("type %s has kind %s, which the hash printer does not handle", name, t.Kind()))
	}
	w.types[name] = info
	return name
}

func jsonName(f reflect.StructField) string {
	tag, ok := f.Tag.Lookup("json")
	if !ok {
		if f.Anonymous {
			return ""
		}
		return f.Name
	}
	return strings.Split(tag, ",")[0]
}

func provenance() map[string]string {
	p := map[string]string{"go": runtime.Version(), "generator": "tools/gotypes (make gotypes)"}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "k8s.io/api" || dep.Path == "k8s.io/apimachinery" {
				p[dep.Path] = dep.Version
			}
		}
	}
	return p
}

func main() {
	w := &walker{types: map[string]typeInfo{}, seen: map[string]reflect.Type{}}
	root := w.visit(reflect.TypeOf(corev1.PodTemplateSpec{}))
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(output{Provenance: provenance(), Root: root, Types: w.types}); err != nil {
		panic(err)
	}
}
