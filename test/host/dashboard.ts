/**
 * The Grafana dashboard (monitoring/ctlab-dashboard.json), built with
 * Grafana's own TypeScript SDK so that its structure is the one Grafana's
 * schema defines. `node dist/test/host/dashboard.js --write` regenerates the
 * file; the test checks the file is what this builder makes.
 */
import { writeFileSync } from "node:fs";
import { DashboardBuilder, DatasourceVariableBuilder, QueryVariableBuilder, RowBuilder } from "@grafana/grafana-foundation-sdk/dashboard";
import { DataqueryBuilder } from "@grafana/grafana-foundation-sdk/prometheus";
import { PanelBuilder as StatPanel } from "@grafana/grafana-foundation-sdk/stat";
import { PanelBuilder as TimeseriesPanel } from "@grafana/grafana-foundation-sdk/timeseries";

const DS = { type: "prometheus", uid: "${datasource}" };
const SEL = 'instance=~"$instance"';

function q(expr: string, legend = ""): DataqueryBuilder {
  return new DataqueryBuilder().expr(expr).legendFormat(legend).datasource(DS);
}

export function buildDashboard(): unknown {
  // The v1 dashboard model is what Grafana's file provisioning loads (monitoring/); v2 is another schema.
  // eslint-disable-next-line @typescript-eslint/no-deprecated
  const b = new DashboardBuilder("Connection tracking (ctlab)")
    .uid("ctlab-conntrack")
    .description("nf_conntrack fill, drops, states and top talkers, from node_exporter and `ctlab exporter`.")
    .tags(["conntrack", "netfilter", "ctlab"])
    .refresh("30s")
    .time({ from: "now-6h", to: "now" })
    .timezone("browser")
    .withVariable(new DatasourceVariableBuilder("datasource").label("Data source").type("prometheus"))
    .withVariable(
      new QueryVariableBuilder("instance")
        .label("Instance")
        .datasource(DS)
        .query("label_values(node_nf_conntrack_entries, instance)")
        .multi(true)
        .includeAll(true),
    )
    .withRow(new RowBuilder("Fill"))
    .withPanel(
      new StatPanel()
        .title("Table fill")
        .unit("percentunit")
        .min(0)
        .max(1)
        .span(6)
        .height(6)
        .withTarget(q(`node_nf_conntrack_entries{${SEL}} / node_nf_conntrack_entries_limit{${SEL}}`, "{{instance}} {{netns}}")),
    )
    .withPanel(
      new StatPanel()
        .title("Time until full")
        .unit("s")
        .span(6)
        .height(6)
        .withTarget(q(`ctlab_conntrack_seconds_until_full{${SEL}}`, "{{instance}} {{netns}}")),
    )
    .withPanel(
      new StatPanel()
        .title("Kernel memory (now / at limit)")
        .unit("bytes")
        .span(6)
        .height(6)
        .withTarget(q(`ctlab_conntrack_kernel_memory_bytes{${SEL}}`, "now {{instance}}"))
        .withTarget(q(`ctlab_conntrack_kernel_memory_at_limit_bytes{${SEL}}`, "at limit {{instance}}")),
    )
    .withPanel(
      new StatPanel()
        .title("Oldest idle ESTABLISHED")
        .unit("s")
        .span(6)
        .height(6)
        .withTarget(q(`ctlab_conntrack_oldest_idle_established_seconds{${SEL}}`, "{{instance}} {{netns}}")),
    )
    .withPanel(
      new TimeseriesPanel()
        .title("Entries and limit")
        .unit("short")
        .min(0)
        .span(12)
        .height(8)
        .withTarget(q(`node_nf_conntrack_entries{${SEL}}`, "entries {{instance}} {{netns}}"))
        .withTarget(q(`node_nf_conntrack_entries_limit{${SEL}}`, "limit {{instance}} {{netns}}")),
    )
    .withPanel(
      new TimeseriesPanel()
        .title("Entries by protocol and state")
        .unit("short")
        .min(0)
        .span(12)
        .height(8)
        .withTarget(q(`sum by (protocol, state) (ctlab_conntrack_entries_by_state{${SEL}})`, "{{protocol}} {{state}}")),
    )
    .withRow(new RowBuilder("Drops and races"))
    .withPanel(
      new TimeseriesPanel()
        .title("Drops and early drops /s")
        .unit("ops")
        .min(0)
        .span(12)
        .height(8)
        .withTarget(q(`rate(node_nf_conntrack_stat_drop{${SEL}}[$__rate_interval])`, "drop {{instance}}"))
        .withTarget(q(`rate(node_nf_conntrack_stat_early_drop{${SEL}}[$__rate_interval])`, "early_drop {{instance}}")),
    )
    .withPanel(
      new TimeseriesPanel()
        .title("insert_failed and clash_resolve /s")
        .unit("ops")
        .min(0)
        .span(12)
        .height(8)
        .withTarget(q(`rate(node_nf_conntrack_stat_insert_failed{${SEL}}[$__rate_interval])`, "insert_failed {{instance}}"))
        .withTarget(q(`rate(ctlab_conntrack_stat_clash_resolve{${SEL}}[$__rate_interval])`, "clash_resolve {{instance}}")),
    )
    .withRow(new RowBuilder("Who fills it"))
    .withPanel(
      new TimeseriesPanel()
        .title("Top sources")
        .unit("short")
        .min(0)
        .span(12)
        .height(8)
        .withTarget(q(`topk(10, ctlab_conntrack_top_source_entries{${SEL}, source!="other"})`, "{{source}}")),
    )
    .withPanel(
      new TimeseriesPanel()
        .title("Top destination ports")
        .unit("short")
        .min(0)
        .span(12)
        .height(8)
        .withTarget(q(`topk(10, ctlab_conntrack_top_dport_entries{${SEL}, dport!="other"})`, "{{dport}}")),
    )
    .withPanel(
      new TimeseriesPanel()
        .title("Orphans (idle ESTABLISHED)")
        .unit("short")
        .min(0)
        .span(12)
        .height(8)
        .withTarget(q(`ctlab_conntrack_orphans{${SEL}}`, "{{instance}} {{netns}}")),
    )
    .withPanel(
      new TimeseriesPanel()
        .title("Exporter scrape duration (p90)")
        .unit("s")
        .min(0)
        .span(12)
        .height(8)
        .withTarget(q(`histogram_quantile(0.9, sum by (le, instance) (rate(ctlab_scrape_duration_seconds_bucket{${SEL}}[$__rate_interval])))`, "{{instance}}")),
    );
  return b.build();
}

export function dashboardJson(): string {
  return JSON.stringify(buildDashboard(), null, 2) + "\n";
}

if (process.argv.includes("--write")) {
  writeFileSync(new URL("../../../monitoring/ctlab-dashboard.json", import.meta.url), dashboardJson());
}
