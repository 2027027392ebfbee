using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Xml;

namespace Corral.Api.Metrics;

/// <summary>xapi's consolidation functions: how the samples within one row's step become its value.</summary>
public enum ConsolidationFunction
{
    Average,
    Min,
    Max,
    Last,
}

/// <summary>What <c>GET /rrd_updates</c> asks for.</summary>
/// <param name="Start">Unix seconds; rows at or after it. Negative: relative to the newest sample.</param>
/// <param name="IntervalSeconds">The step the caller wants; 0 or less is the sampling step.</param>
/// <param name="IncludeHost">The host's own data sources (<c>host=true</c>).</param>
/// <param name="VmUuid">Null for every VM (xapi's default "all"), "none" for none, or one VM's uuid.</param>
public sealed record RrdUpdatesQuery(long Start, ConsolidationFunction Cf, long IntervalSeconds, bool IncludeHost, string? VmUuid, bool Json)
{
    /// <summary>
    /// Reads the query as xapi's rrdd does: <c>start</c> is required and an integer; <c>cf</c> one of AVERAGE, MIN, MAX,
    /// LAST (anything else is AVERAGE); <c>interval</c> an integer (else the sampling step); <c>host=true</c>;
    /// <c>vm_uuid</c>; <c>json</c> present, or an Accept header that prefers application/json over text/xml.
    /// </summary>
    /// <returns>Null with <paramref name="error"/> set when the query cannot be served.</returns>
    public static RrdUpdatesQuery? Parse(Func<string, string?> parameter, string? accept, out string? error)
    {
        error = null;
        var startText = parameter("start");
        if (string.IsNullOrEmpty(startText))
        {
            error = "missing the 'start' parameter";
            return null;
        }

        if (!long.TryParse(startText, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var start))
        {
            error = $"the 'start' parameter '{startText}' is not a whole number of seconds";
            return null;
        }

        var cf = parameter("cf")?.ToUpperInvariant() switch
        {
            "MIN" => ConsolidationFunction.Min,
            "MAX" => ConsolidationFunction.Max,
            "LAST" => ConsolidationFunction.Last,
            _ => ConsolidationFunction.Average,
        };
        var interval = long.TryParse(parameter("interval"), NumberStyles.None, CultureInfo.InvariantCulture, out var i) ? i : 0;
        var host = string.Equals(parameter("host"), "true", StringComparison.OrdinalIgnoreCase);
        var vm = parameter("vm_uuid") is { Length: > 0 } v && !v.Equals("all", StringComparison.OrdinalIgnoreCase) ? v : null;
        var json = parameter("json") is not null || PrefersJson(accept);
        return new RrdUpdatesQuery(start, cf, interval, host, vm, json);
    }

    /// <summary>True when Accept names application/json with a higher preference than text/xml (a wildcard alone does not).</summary>
    public static bool PrefersJson(string? accept)
    {
        if (string.IsNullOrWhiteSpace(accept))
        {
            return false;
        }

        double json = 0, xml = 0;
        foreach (var range in accept.Split(','))
        {
            var parts = range.Split(';');
            var type = parts[0].Trim().ToLowerInvariant();
            var q = 1.0;
            foreach (var p in parts.Skip(1))
            {
                var kv = p.Split('=', 2);
                if (kv.Length == 2 && kv[0].Trim() == "q" && double.TryParse(kv[1].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed))
                {
                    q = parsed;
                }
            }

            if (type == "application/json")
            {
                json = Math.Max(json, q);
            }
            else if (type is "text/xml" or "application/xml")
            {
                xml = Math.Max(xml, q);
            }
        }

        return json > 0 && json > xml;
    }

    /// <summary>Whether a data source (by its name without the CF) belongs in the answer.</summary>
    public bool Includes(string name)
    {
        if (name.StartsWith("host:", StringComparison.Ordinal))
        {
            return IncludeHost;
        }

        if (name.StartsWith("vm:", StringComparison.Ordinal))
        {
            return VmUuid switch
            {
                null => true,
                "none" => false,
                var uuid => name.Length > 3 + uuid.Length && name.AsSpan(3, uuid.Length).Equals(uuid, StringComparison.OrdinalIgnoreCase)
                    && name[3 + uuid.Length] == ':',
            };
        }

        return false;
    }
}

/// <summary>One row: the end of its step, and a value per legend column.</summary>
public sealed record XportRow(long Time, IReadOnlyList<double> Values);

/// <summary>rrdtool's xport document, as xapi serves it from <c>/rrd_updates</c>: rows newest first.</summary>
public sealed record XportTable(long Start, long Step, long End, IReadOnlyList<string> Legend, IReadOnlyList<XportRow> Rows)
{
    public static string CfName(ConsolidationFunction cf) => cf switch
    {
        ConsolidationFunction.Min => "MIN",
        ConsolidationFunction.Max => "MAX",
        ConsolidationFunction.Last => "LAST",
        _ => "AVERAGE",
    };

    /// <summary>
    /// Builds the table from the samples (oldest first) as xapi builds it from its archives. The step is the asked
    /// interval rounded up to whole sampling steps (at most the hour the history holds); each row is stamped with the
    /// end of its step, a multiple of the step, and consolidates the samples in (time - step, time]. The newest row is
    /// the last complete step; rows go back to <paramref name="query"/>'s start or as far as the history does.
    /// <c>meta.start</c> is, as in xapi, the first step boundary after the asked start.
    /// </summary>
    /// <param name="nowSeconds">The end when there are no samples yet.</param>
    public static XportTable Build(IReadOnlyList<PerformanceSample> samples, RrdUpdatesQuery query, long nowSeconds,
        int sampleStepSeconds = PerformanceHistory.SampleStepSeconds)
    {
        var steps = Math.Max(1, (query.IntervalSeconds + sampleStepSeconds - 1) / sampleStepSeconds);
        var step = Math.Min(steps * sampleStepSeconds, 3600L);
        var newest = samples.Count > 0 ? samples[^1].Time : nowSeconds;
        var oldest = samples.Count > 0 ? samples[0].Time : nowSeconds;
        var start = query.Start < 0 ? newest + query.Start : query.Start;
        var end = FloorTo(newest, step);
        var first = FloorTo(start, step) + step;

        var rows = new List<(long Time, List<PerformanceSample> Samples)>();
        var index = samples.Count - 1;
        for (var time = end; time >= start && time >= oldest && samples.Count > 0; time -= step)
        {
            var within = new List<PerformanceSample>();
            while (index >= 0 && samples[index].Time > time)
            {
                index--; // newer than this row (the incomplete step after the end)
            }

            while (index >= 0 && samples[index].Time > time - step)
            {
                within.Add(samples[index--]);
            }

            within.Reverse();
            rows.Add((time, within));
        }

        // Columns: the newest sample's data sources in its order (what runs here now), then any only older rows have.
        var names = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var sample in rows.SelectMany(r => Enumerable.Reverse(r.Samples)))
        {
            foreach (var (name, _) in sample.Values)
            {
                if (query.Includes(name) && seen.Add(name))
                {
                    names.Add(name);
                }
            }
        }

        var cfName = CfName(query.Cf);
        var legend = names.Select(n => cfName + ":" + n).ToList();
        var table = rows.Select(r => new XportRow(r.Time, names.Select(n => Consolidate(r.Samples, n, query.Cf)).ToList())).ToList();
        return new XportTable(first, step, end, legend, table);
    }

    private static long FloorTo(long time, long step) => (long)Math.Floor((double)time / step) * step;

    private static double Consolidate(List<PerformanceSample> samples, string name, ConsolidationFunction cf)
    {
        double sum = 0, min = double.PositiveInfinity, max = double.NegativeInfinity, last = double.NaN;
        var known = 0;
        foreach (var sample in samples)
        {
            if (!sample.TryGet(name, out var v) || double.IsNaN(v))
            {
                continue;
            }

            known++;
            sum += v;
            min = Math.Min(min, v);
            max = Math.Max(max, v);
            last = v;
        }

        if (known == 0)
        {
            return double.NaN;
        }

        return cf switch
        {
            ConsolidationFunction.Min => min,
            ConsolidationFunction.Max => max,
            ConsolidationFunction.Last => last,
            _ => sum / known,
        };
    }

    /// <summary>
    /// A value as xapi writes it: NaN, Infinity and -Infinity by name (what C# and JavaScript parse), zero as "0.0",
    /// anything else as the shortest text that reads back to the same double.
    /// </summary>
    public static string FormatValue(double value) => value switch
    {
        double.NaN => "NaN",
        double.PositiveInfinity => "Infinity",
        double.NegativeInfinity => "-Infinity",
        0 => "0.0",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };

    private static string Integer(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// <c>&lt;xport&gt;&lt;meta&gt;start step end rows columns legend/entry&lt;/meta&gt;&lt;data&gt;row/t,v...&lt;/data&gt;&lt;/xport&gt;</c>.
    /// </summary>
    public string ToXml()
    {
        var settings = new XmlWriterSettings { Encoding = new UTF8Encoding(false), Indent = false };
        using var stream = new MemoryStream();
        using (var xml = XmlWriter.Create(stream, settings))
        {
            xml.WriteStartDocument();
            xml.WriteStartElement("xport");
            xml.WriteStartElement("meta");
            xml.WriteElementString("start", Integer(Start));
            xml.WriteElementString("step", Integer(Step));
            xml.WriteElementString("end", Integer(End));
            xml.WriteElementString("rows", Integer(Rows.Count));
            xml.WriteElementString("columns", Integer(Legend.Count));
            xml.WriteStartElement("legend");
            foreach (var entry in Legend)
            {
                xml.WriteElementString("entry", entry);
            }

            xml.WriteEndElement();
            xml.WriteEndElement();
            xml.WriteStartElement("data");
            foreach (var row in Rows)
            {
                xml.WriteStartElement("row");
                xml.WriteElementString("t", Integer(row.Time));
                foreach (var value in row.Values)
                {
                    xml.WriteElementString("v", FormatValue(value));
                }

                xml.WriteEndElement();
            }

            xml.WriteEndElement();
            xml.WriteEndElement();
            xml.WriteEndDocument();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>
    /// The JSON of current xapi (valid JSON since XAPI 23.31): the same document as the XML, every scalar written as a
    /// string, which is how NaN stays representable: <c>{"meta":{"start":"…","step":"5","end":"…","rows":"…",
    /// "columns":"…","legend":[…]},"data":[{"t":"…","values":["0.25",…]}]}</c>.
    /// </summary>
    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream))
        {
            json.WriteStartObject();
            json.WriteStartObject("meta");
            json.WriteString("start", Integer(Start));
            json.WriteString("step", Integer(Step));
            json.WriteString("end", Integer(End));
            json.WriteString("rows", Integer(Rows.Count));
            json.WriteString("columns", Integer(Legend.Count));
            json.WriteStartArray("legend");
            foreach (var entry in Legend)
            {
                json.WriteStringValue(entry);
            }

            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteStartArray("data");
            foreach (var row in Rows)
            {
                json.WriteStartObject();
                json.WriteString("t", Integer(row.Time));
                json.WriteStartArray("values");
                foreach (var value in row.Values)
                {
                    json.WriteStringValue(FormatValue(value));
                }

                json.WriteEndArray();
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
