using System.Text.Json;
using System.Text.Json.Nodes;
using System.Xml.Linq;
using Corral.Api.Metrics;
using Corral.Hypervisor.Qemu;
using Corral.Platform;
using Xunit;

namespace Corral.UnitTests;

public class PerformanceHistoryTests
{
    private static PerformanceSample At(long time, double value = 1) => new(time, [new("host:h:cpu_avg", value)]);

    [Fact]
    public void Default_capacity_holds_an_hour_of_five_second_samples()
    {
        Assert.True(new PerformanceHistory().Capacity * PerformanceHistory.SampleStepSeconds >= 3600);
    }

    [Fact]
    public void A_full_ring_keeps_the_newest_samples_oldest_first()
    {
        var history = new PerformanceHistory(3);
        for (var t = 5; t <= 25; t += 5)
        {
            Assert.True(history.Add(At(t)));
        }

        Assert.Equal([15L, 20L, 25L], history.Snapshot().Select(s => s.Time));
    }

    [Fact]
    public void A_sample_at_the_newest_time_replaces_it_and_an_older_one_is_refused()
    {
        var history = new PerformanceHistory(4);
        history.Add(At(10, 1));
        history.Add(At(15, 1));
        Assert.True(history.Add(At(15, 2)));
        Assert.False(history.Add(At(5, 3)));
        var snapshot = history.Snapshot();
        Assert.Equal([10L, 15L], snapshot.Select(s => s.Time));
        Assert.True(snapshot[1].TryGet("host:h:cpu_avg", out var v));
        Assert.Equal(2, v);
    }

    [Fact]
    public void An_empty_ring_has_no_samples()
    {
        Assert.Empty(new PerformanceHistory(2).Snapshot());
        Assert.Throws<ArgumentOutOfRangeException>(() => new PerformanceHistory(0));
    }
}

public class CounterRatesTests
{
    [Fact]
    public void Rate_is_the_counter_delta_over_the_elapsed_time()
    {
        Assert.Equal(200, CounterRates.PerSecond(1000, 2000, 5));
        Assert.Equal(0, CounterRates.PerSecond(1000, 1000, 5));
        Assert.True(double.IsNaN(CounterRates.PerSecond(1000, 2000, 0)));
    }

    [Fact]
    public void A_counter_has_no_rate_when_first_seen_and_one_per_second_afterwards()
    {
        var rates = new CounterRates();
        Assert.True(double.IsNaN(rates.Observe("vbd", 4096, 100)));
        rates.EndRound();
        Assert.Equal(1024, rates.Observe("vbd", 4096 + 5 * 1024, 105));
        rates.EndRound();
        Assert.Equal(0, rates.Observe("vbd", 4096 + 5 * 1024, 110));
    }

    [Fact]
    public void A_counter_that_went_back_was_reset_and_has_no_rate_for_that_round_only()
    {
        var rates = new CounterRates();
        rates.Observe("tap", 1_000_000, 0);
        rates.EndRound();
        Assert.True(double.IsNaN(rates.Observe("tap", 500, 5)));
        rates.EndRound();
        Assert.Equal(100, rates.Observe("tap", 1000, 10));
    }

    [Fact]
    public void A_counter_missing_from_a_round_is_forgotten()
    {
        var rates = new CounterRates();
        rates.Observe("vif", 10, 0);
        rates.EndRound();
        rates.EndRound(); // its VM was gone for a round
        Assert.True(double.IsNaN(rates.Observe("vif", 20, 10)));
    }
}

public class ProcStatTests
{
    private const string Stat = """
        cpu  4705 150 1120 16250 520 0 25 7 300 0
        cpu0 2300 75 560 8200 260 0 12 3 150 0
        cpu1 2405 75 560 8050 260 0 13 4 150 0
        intr 114930548 113199788 3 0 5 263 0 4 [...]
        ctxt 1990473
        btime 1062191376
        processes 2915
        """;

    [Fact]
    public void Cpu_lines_are_read_without_counting_guest_time_twice()
    {
        var cpus = ProcStat.ParseCpuTimes(Stat);
        Assert.Equal(["cpu", "cpu0", "cpu1"], cpus.Keys.Order());
        // user nice system idle iowait irq softirq steal: 4705+150+1120+16250+520+0+25+7; idle+iowait 16770.
        Assert.Equal(new CpuTimes(6007, 22777), cpus["cpu"]);
        Assert.Equal(new CpuTimes(2950, 11410), cpus["cpu0"]);
    }

    [Fact]
    public void Busy_fraction_is_busy_ticks_over_all_ticks_between_readings()
    {
        Assert.Equal(0.25, ProcStat.BusyFraction(new CpuTimes(100, 1000), new CpuTimes(150, 1200)));
        Assert.Equal(0, ProcStat.BusyFraction(new CpuTimes(100, 1000), new CpuTimes(100, 1100)));
        Assert.True(double.IsNaN(ProcStat.BusyFraction(new CpuTimes(100, 1000), new CpuTimes(100, 1000))));
        Assert.True(double.IsNaN(ProcStat.BusyFraction(new CpuTimes(100, 1000), new CpuTimes(50, 500))));
    }

    [Fact]
    public void Process_cpu_is_user_plus_system_ticks_counted_after_the_command_name()
    {
        // A command name with spaces and a ')' in it, as QEMU's "-name ...,process=" allows.
        const string line = "4321 (qemu (a) b) S 1 4320 4320 0 -1 4194560 51234 0 12 0 1500 250 0 0 20 0 5 0 98765 1234567890 54321 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
        Assert.Equal(1750, ProcStat.ParseProcessCpuTicks(line));
        Assert.Throws<FormatException>(() => ProcStat.ParseProcessCpuTicks("4321 qemu S 1"));
    }

    [Fact]
    public void Load_average_is_the_one_minute_figure()
    {
        Assert.Equal(0.52, ProcStat.ParseLoadAverage("0.52 0.58 0.59 1/389 12345\n"));
    }

    [Fact]
    public void This_machine_reads()
    {
        Assert.True(ProcStat.ReadCpuTimes()["cpu"].Total > 0);
        Assert.True(ProcStat.ReadProcessCpuTicks(Environment.ProcessId) >= 0);
        Assert.Null(ProcStat.ReadProcessCpuTicks(int.MaxValue));
    }
}

public class BlockStatsTests
{
    [Fact]
    public void Blockstats_give_each_corral_drive_its_byte_counters()
    {
        var reply = JsonNode.Parse("""
            [
              {"device": "drive0", "qdev": "/machine/peripheral-anon/device[1]/virtio-backend",
               "stats": {"rd_bytes": 10485760, "wr_bytes": 4096, "rd_operations": 320, "wr_operations": 1}},
              {"device": "drive3", "stats": {"rd_bytes": 0, "wr_bytes": 0}},
              {"device": "", "node-name": "#block123", "stats": {"rd_bytes": 5, "wr_bytes": 5}}
            ]
            """);
        var counters = QemuVmProcess.ParseBlockStats(reply);
        Assert.Equal([new(0, 10485760, 4096), new(3, 0, 0)], counters);
        Assert.Empty(QemuVmProcess.ParseBlockStats(null));
    }
}

public class RrdUpdatesTests
{
    private const string Host = "a8b1c2d3-0000-4000-8000-000000000001";
    private const string Vm = "0f000000-0000-4000-8000-0000000000aa";
    private const string OtherVm = "0f000000-0000-4000-8000-0000000000bb";

    private static RrdUpdatesQuery Query(string text, string? accept = null)
    {
        var pairs = text.Split('&', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Split('=', 2))
            .ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "");
        var query = RrdUpdatesQuery.Parse(pairs.GetValueOrDefault, accept, out var error);
        Assert.Null(error);
        return query!;
    }

    // Samples every 5 s from 1000 to 1060; the VM runs from 1030 on, the other VM only until 1020.
    private static List<PerformanceSample> Samples()
    {
        var samples = new List<PerformanceSample>();
        for (long t = 1000; t <= 1060; t += 5)
        {
            var values = new List<KeyValuePair<string, double>>
            {
                new($"host:{Host}:cpu_avg", (t - 1000) / 100.0),
                new($"host:{Host}:memory_total_kib", 8_388_608),
            };
            if (t >= 1030)
            {
                values.Add(new($"vm:{Vm}:cpu0", 0.5));
                values.Add(new($"vm:{Vm}:memory", 268435456));
            }

            if (t <= 1020)
            {
                values.Add(new($"vm:{OtherVm}:cpu0", 0.1));
            }

            samples.Add(new PerformanceSample(t, values));
        }

        return samples;
    }

    [Fact]
    public void The_query_needs_a_whole_number_start()
    {
        Assert.Null(RrdUpdatesQuery.Parse(_ => null, null, out var missing));
        Assert.Contains("start", missing, StringComparison.Ordinal);
        Assert.Null(RrdUpdatesQuery.Parse(n => n == "start" ? "yesterday" : null, null, out var bad));
        Assert.Contains("yesterday", bad, StringComparison.Ordinal);
        Assert.Equal(-60, Query("start=-60").Start);
    }

    [Fact]
    public void The_query_reads_xapis_parameters()
    {
        var q = Query($"session_id=OpaqueRef:x&start=1000&cf=MAX&interval=60&host=true&vm_uuid={Vm}&json=true");
        Assert.Equal(new RrdUpdatesQuery(1000, ConsolidationFunction.Max, 60, true, Vm, true), q);
        var defaults = Query("start=1000");
        Assert.Equal(new RrdUpdatesQuery(1000, ConsolidationFunction.Average, 0, false, null, false), defaults);
        Assert.Equal(ConsolidationFunction.Average, Query("start=1&cf=BOGUS").Cf);
        Assert.False(Query("start=1&host=false").IncludeHost);
        Assert.Null(Query("start=1&vm_uuid=all").VmUuid);
    }

    [Fact]
    public void Json_is_chosen_by_the_json_parameter_or_an_accept_header_that_prefers_it()
    {
        Assert.True(Query("start=1", "application/json").Json);
        Assert.True(Query("start=1", "text/xml;q=0.5, application/json").Json);
        Assert.False(Query("start=1", "*/*").Json);
        Assert.False(Query("start=1", "application/json;q=0.4, text/xml").Json);
        Assert.False(Query("start=1").Json);
    }

    [Fact]
    public void Legend_names_each_data_source_with_its_consolidation_function_object_and_uuid()
    {
        var table = XportTable.Build(Samples(), Query("start=1000&host=true"), 0);
        Assert.Equal(
        [
            $"AVERAGE:host:{Host}:cpu_avg", $"AVERAGE:host:{Host}:memory_total_kib",
            $"AVERAGE:vm:{Vm}:cpu0", $"AVERAGE:vm:{Vm}:memory", $"AVERAGE:vm:{OtherVm}:cpu0",
        ], table.Legend);
        Assert.Equal(["MAX:vm:" + Vm + ":cpu0", "MAX:vm:" + Vm + ":memory"],
            XportTable.Build(Samples(), Query($"start=1000&cf=MAX&vm_uuid={Vm}"), 0).Legend);
        Assert.Empty(XportTable.Build(Samples(), Query("start=1000&vm_uuid=none"), 0).Legend);
    }

    [Fact]
    public void Rows_run_newest_first_from_the_last_sample_back_to_start()
    {
        var table = XportTable.Build(Samples(), Query("start=1041&host=true"), 0);
        Assert.Equal(5, table.Step);
        Assert.Equal(1060, table.End);
        Assert.Equal(1045, table.Start); // the first step boundary after start, as xapi's meta says
        Assert.Equal([1060L, 1055L, 1050L, 1045L], table.Rows.Select(r => r.Time));
        Assert.Equal(0.6, table.Rows[0].Values[0], 10);
        Assert.Equal(table.Legend.Count, table.Rows[0].Values.Count);
    }

    [Fact]
    public void A_start_before_the_history_gives_what_there_is_and_unknown_values_are_nan()
    {
        var table = XportTable.Build(Samples(), Query("start=0&host=true"), 0);
        Assert.Equal(13, table.Rows.Count);
        Assert.Equal(1000, table.Rows[^1].Time);
        var vmCpu = table.Legend.ToList().IndexOf($"AVERAGE:vm:{Vm}:cpu0");
        Assert.Equal(0.5, table.Rows[0].Values[vmCpu]);
        Assert.True(double.IsNaN(table.Rows[^1].Values[vmCpu])); // not running yet at 1000
    }

    [Fact]
    public void A_negative_start_counts_back_from_the_newest_sample()
    {
        var table = XportTable.Build(Samples(), Query("start=-10&host=true"), 0);
        Assert.Equal([1060L, 1055L, 1050L], table.Rows.Select(r => r.Time));
    }

    [Fact]
    public void A_longer_interval_consolidates_whole_steps()
    {
        var samples = Samples();
        var average = XportTable.Build(samples, Query("start=0&host=true&interval=30"), 0);
        Assert.Equal(30, average.Step);
        Assert.Equal(1050, average.End); // 1055 and 1060 are an incomplete step
        Assert.Equal([1050L, 1020L], average.Rows.Select(r => r.Time)); // (990, 1020] holds the oldest sample, no earlier row has any
        // (1020, 1050]: cpu_avg 0.25 .. 0.50
        Assert.Equal((0.25 + 0.30 + 0.35 + 0.40 + 0.45 + 0.50) / 6, average.Rows[0].Values[0], 10);
        var max = XportTable.Build(samples, Query("start=0&host=true&interval=30&cf=MAX"), 0);
        Assert.Equal(0.50, max.Rows[0].Values[0], 10);
        var min = XportTable.Build(samples, Query("start=0&host=true&interval=30&cf=MIN"), 0);
        Assert.Equal(0.25, min.Rows[0].Values[0], 10);
        var last = XportTable.Build(samples, Query("start=0&host=true&interval=7&cf=LAST"), 0);
        Assert.Equal(10, last.Step);
    }

    [Fact]
    public void No_samples_yet_is_an_empty_table_ending_now()
    {
        var table = XportTable.Build([], Query("start=100&host=true"), 1234);
        Assert.Equal(1230, table.End);
        Assert.Empty(table.Rows);
        Assert.Empty(table.Legend);
    }

    [Fact]
    public void Values_are_written_as_xapi_writes_them()
    {
        Assert.Equal("NaN", XportTable.FormatValue(double.NaN));
        Assert.Equal("Infinity", XportTable.FormatValue(double.PositiveInfinity));
        Assert.Equal("-Infinity", XportTable.FormatValue(double.NegativeInfinity));
        Assert.Equal("0.0", XportTable.FormatValue(0));
        Assert.Equal("0.125", XportTable.FormatValue(0.125));
        Assert.Equal("268435456", XportTable.FormatValue(268435456));
    }

    [Fact]
    public void Xml_is_rrdtools_xport_document()
    {
        var table = XportTable.Build(Samples(), Query($"start=1050&host=true&vm_uuid={Vm}"), 0);
        var doc = XDocument.Parse(table.ToXml());
        var meta = doc.Root!.Element("meta")!;
        Assert.Equal("xport", doc.Root.Name.LocalName);
        Assert.Equal(["start", "step", "end", "rows", "columns", "legend"], meta.Elements().Select(e => e.Name.LocalName));
        Assert.Equal("1055", meta.Element("start")!.Value);
        Assert.Equal("5", meta.Element("step")!.Value);
        Assert.Equal("1060", meta.Element("end")!.Value);
        Assert.Equal("3", meta.Element("rows")!.Value);
        Assert.Equal("4", meta.Element("columns")!.Value);
        Assert.Equal(table.Legend, meta.Element("legend")!.Elements("entry").Select(e => e.Value));
        var rows = doc.Root.Element("data")!.Elements("row").ToList();
        Assert.Equal(3, rows.Count);
        Assert.Equal("1060", rows[0].Elements().First().Value);
        Assert.Equal("t", rows[0].Elements().First().Name.LocalName);
        Assert.Equal(["0.6", "8388608", "0.5", "268435456"], rows[0].Elements("v").Select(v => v.Value));
    }

    [Fact]
    public void Json_is_the_same_document_with_every_scalar_a_string()
    {
        var table = XportTable.Build(Samples(), Query("start=1020&host=true"), 0);
        using var doc = JsonDocument.Parse(table.ToJson());
        var meta = doc.RootElement.GetProperty("meta");
        Assert.Equal(["start", "step", "end", "rows", "columns", "legend"], meta.EnumerateObject().Select(p => p.Name));
        Assert.Equal("1025", meta.GetProperty("start").GetString());
        Assert.Equal("5", meta.GetProperty("step").GetString());
        Assert.Equal("1060", meta.GetProperty("end").GetString());
        Assert.Equal("9", meta.GetProperty("rows").GetString());
        Assert.Equal("5", meta.GetProperty("columns").GetString());
        Assert.Equal(table.Legend, meta.GetProperty("legend").EnumerateArray().Select(e => e.GetString()));
        var data = doc.RootElement.GetProperty("data");
        Assert.Equal(9, data.GetArrayLength());
        Assert.Equal("1060", data[0].GetProperty("t").GetString());
        Assert.Equal(["0.6", "8388608", "0.5", "268435456", "NaN"], data[0].GetProperty("values").EnumerateArray().Select(v => v.GetString()));
    }
}
