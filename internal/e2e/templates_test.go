package e2e

import (
	"context"
	"testing"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

func TestPublicTemplates(t *testing.T) {
	e := start(t, setup{nodes: 1})
	ctx := context.Background()
	pub, err := e.client.CreateTemplate(ctx, apiclient.TemplateRequest{Name: "all hands", Domain: "acme", Scale: 64, Resolution: "1080p", DurationMinutes: 90, Public: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(pub.E164) != 7 || pub.E164[:2] != "51" || pub.Platform != "p1" {
		t.Fatalf("template = %+v; want a number in p1's segment 51", pub)
	}
	priv, err := e.client.CreateTemplate(ctx, apiclient.TemplateRequest{Name: "board", Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 30, E164: "5190001"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateTemplate(ctx, apiclient.TemplateRequest{Name: "again", Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 30, E164: "5190001"}); apiCode(err) != protocol.ErrE164InUse {
		t.Fatalf("duplicate template number: %v", err)
	}
	all, _ := e.client.DomainTemplates(ctx, "acme", false)
	public, _ := e.client.DomainTemplates(ctx, "acme", true)
	if len(all) != 2 || len(public) != 1 || public[0].E164 != pub.E164 {
		t.Fatalf("templates: all %v, public %v", all, public)
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the template in the registry", func() bool {
		r, err := e.client.Registry(ctx, pub.E164)
		return err == nil && r.Kind == "template"
	}))
	// A conference numbered after a template is allocated around it.
	c := e.mustCreate("after templates")
	if c.E164 == pub.E164 || c.E164 == priv.E164 {
		t.Fatalf("conference took template number %s", c.E164)
	}
	priv.Name = "board (renamed)"
	upd, err := e.client.UpdateTemplate(ctx, priv.E164, apiclient.TemplateRequest{Name: "board (renamed)", Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 45})
	if err != nil || upd.Name != "board (renamed)" || upd.DurationMinutes != 45 {
		t.Fatalf("update = %+v, %v", upd, err)
	}
	if err := e.client.DeleteTemplate(ctx, priv.E164); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Template(ctx, priv.E164); apiCode(err) != protocol.ErrTemplateNotFound {
		t.Fatalf("deleted template: %v", err)
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the registry to forget the deleted template", func() bool {
		_, err := e.client.Registry(ctx, priv.E164)
		return apiCode(err) == protocol.ErrNotFound
	}))
}
