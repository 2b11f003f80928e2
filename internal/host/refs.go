package host

import (
	"fmt"
	"reflect"
	"strings"
)

// ChannelRef names a channel of the host file (channels:). A plugin's
// configuration uses it for a key that names one (out: parse), so that the
// host refuses a file naming a channel it does not declare, at the key.
type ChannelRef string

// ResourceRef names an infrastructure resource of the host file
// (infrastructure:), as ChannelRef names a channel: store: store.
type ResourceRef string

var (
	channelRefType  = reflect.TypeOf(ChannelRef(""))
	resourceRefType = reflect.TypeOf(ResourceRef(""))
)

// refUse is one reference found in a decoded configuration.
type refUse struct {
	channel bool // else a resource
	name    string
	path    string
}

// findRefs lists the channel and resource references in a decoded
// configuration, with their key paths (defaults included).
func findRefs(v any, path string) []refUse {
	var out []refUse
	walkRefs(reflect.ValueOf(v), path, &out)
	return out
}

func walkRefs(v reflect.Value, path string, out *[]refUse) {
	if !v.IsValid() {
		return
	}
	switch v.Type() {
	case channelRefType:
		if s := v.String(); s != "" {
			*out = append(*out, refUse{channel: true, name: s, path: path})
		}
		return
	case resourceRefType:
		if s := v.String(); s != "" {
			*out = append(*out, refUse{name: s, path: path})
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkRefs(v.Elem(), path, out)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag := f.Tag.Get("yaml")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if strings.Contains(","+opts+",", ",inline,") {
				walkRefs(v.Field(i), path, out)
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			walkRefs(v.Field(i), join(path, name), out)
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			walkRefs(iter.Value(), join(path, fmt.Sprint(iter.Key().Interface())), out)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			walkRefs(v.Index(i), fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}
