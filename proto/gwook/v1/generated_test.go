package gwookv1_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/linker"
	"google.golang.org/protobuf/cmd/protoc-gen-go/internal_gengo"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"
)

// TestGeneratedCodeIsCurrent fails when event.pb.go is not what
// `make proto` makes of event.proto today. It runs offline and without
// buf: event.proto is compiled by protocompile (the compiler buf is built
// on) and handed to protoc-gen-go's own generator, from go.mod's
// google.golang.org/protobuf, as buf hands it to the protoc-gen-go that
// buf.gen.yaml runs, with the same option (paths=source_relative).
func TestGeneratedCodeIsCurrent(t *testing.T) {
	const source = "gwook/v1/event.proto"
	compiler := protocompile.Compiler{
		Resolver:       protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: []string{"../.."}}),
		SourceInfoMode: protocompile.SourceInfoStandard,
	}
	files, err := compiler.Compile(context.Background(), source)
	if err != nil {
		t.Fatalf("compiling %s: %v", source, err)
	}
	req := &pluginpb.CodeGeneratorRequest{FileToGenerate: []string{source}, Parameter: proto.String("paths=source_relative")}
	seen := map[string]bool{}
	var add func(f protoreflect.FileDescriptor)
	add = func(f protoreflect.FileDescriptor) {
		if seen[f.Path()] {
			return
		}
		seen[f.Path()] = true
		imports := f.Imports()
		for i := range imports.Len() {
			add(imports.Get(i).FileDescriptor)
		}
		req.ProtoFile = append(req.ProtoFile, fileProto(f))
	}
	add(files[0])
	plugin, err := protogen.Options{}.New(req)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range plugin.Files {
		if f.Generate {
			internal_gengo.GenerateFile(plugin, f)
		}
	}
	resp := plugin.Response()
	if resp.Error != nil {
		t.Fatalf("protoc-gen-go: %s", resp.GetError())
	}
	if len(resp.File) != 1 {
		t.Fatalf("protoc-gen-go made %d files, want 1", len(resp.File))
	}
	want := []byte(resp.File[0].GetContent())
	got, err := os.ReadFile(resp.File[0].GetName()[len("gwook/v1/"):])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: run `make proto` and commit the result", resp.File[0].GetName())
		if os.Getenv("GWOOK_PROTO_DIFF") != "" {
			t.Logf("want:\n%s", want)
		}
	}
}

// fileProto is f as the FileDescriptorProto a compiler hands a plugin:
// the one protocompile made, with its source info, for a file compiled
// from source, and otherwise (the well-known types) f's.
func fileProto(f protoreflect.FileDescriptor) *descriptorpb.FileDescriptorProto {
	if r, ok := f.(linker.Result); ok {
		return r.FileDescriptorProto()
	}
	return protodesc.ToFileDescriptorProto(f)
}
