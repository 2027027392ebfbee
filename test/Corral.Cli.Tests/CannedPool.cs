using Corral.Cli;
using Corral.Cli.Api;
using Corral.Api.Client;
using Corral.Cli.Operations;
using Corral.Cli.Records;
using Corral.Model;

namespace Corral.Cli.Tests;

/// <summary>
/// Canned XenAPI answers for testing the CLI's own logic (selection, printing, the calls a command makes), with every
/// call recorded. It answers the generic calls from a fixed set of records; anything else a test names explicitly.
/// It is not a stand-in for the Corral server: the server's behaviour is tested against the real server elsewhere.
/// </summary>
public sealed class CannedPool : IXenApiClient
{
    public const string Session = "OpaqueRef:session";

    private readonly Dictionary<string, Dictionary<string, Dictionary<string, object?>>> _records = new(StringComparer.Ordinal);

    public List<(string Method, IReadOnlyList<object?> Args)> Calls { get; } = [];

    public Dictionary<string, Func<IReadOnlyList<object?>, object?>> Handlers { get; } = new(StringComparer.Ordinal);

    public string Password { get; set; } = "secret";

    /// <summary>The commands xe runs with (xe's own unless a test sets them, to shorten vbd-unplug's polling).</summary>
    public CommandRegistry? Registry { get; set; }

    /// <summary>Answers <paramref name="method"/> with <paramref name="result"/> (a setter: null), recording the call.</summary>
    public CannedPool Answer(string method, object? result = null)
    {
        Handlers[method] = _ => result;
        return this;
    }

    public CannedPool Add(string cls, string reference, Dictionary<string, object?> fields)
    {
        if (!_records.TryGetValue(cls, out var byRef))
        {
            byRef = new Dictionary<string, Dictionary<string, object?>>(StringComparer.Ordinal);
            _records[cls] = byRef;
        }

        byRef[reference] = fields;
        return this;
    }

    /// <summary>The calls after login, without the session argument.</summary>
    public IEnumerable<string> CallLog => Calls.Where(c => c.Method is not ("session.login_with_password" or "session.logout"))
        .Select(c => $"{c.Method}({string.Join(", ", c.Args.Skip(1).Select(Show))})");

    private static string Show(object? v) => v switch
    {
        null => "null",
        string s => s,
        bool b => b ? "true" : "false",
        IEnumerable<KeyValuePair<string, string>> m => "{" + string.Join(",", m.Select(kv => $"{kv.Key}:{kv.Value}")) + "}",
        IEnumerable<KeyValuePair<string, object?>> m => "{" + string.Join(",", m.Select(kv => $"{kv.Key}:{Show(kv.Value)}")) + "}",
        System.Collections.IEnumerable l => "[" + string.Join(",", l.Cast<object?>().Select(Show)) + "]",
        _ => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };

    /// <summary>The HTTP transfers made (<c>GET /export...</c>, <c>PUT /import...</c>), in order.</summary>
    public List<string> Transfers { get; } = [];

    /// <summary>What a GET answers with.</summary>
    public byte[] Download { get; set; } = [];

    /// <summary>What the last PUT sent.</summary>
    public byte[] Uploaded { get; private set; } = [];

    public async Task GetAsync(string pathAndQuery, Stream destination, CancellationToken cancellationToken)
    {
        Transfers.Add("GET " + pathAndQuery);
        await destination.WriteAsync(Download, cancellationToken);
    }

    public async Task PutAsync(string pathAndQuery, Stream source, CancellationToken cancellationToken)
    {
        Transfers.Add("PUT " + pathAndQuery);
        using var copy = new MemoryStream();
        await source.CopyToAsync(copy, cancellationToken);
        Uploaded = copy.ToArray();
    }

    public Task<object?> CallAsync(string method, IReadOnlyList<object?> parameters, CancellationToken cancellationToken)
    {
        Calls.Add((method, parameters));
        return Task.FromResult(Answer(method, parameters));
    }

    private object? Answer(string method, IReadOnlyList<object?> p)
    {
        if (Handlers.TryGetValue(method, out var handler))
        {
            return handler(p);
        }

        switch (method)
        {
            case "session.login_with_password":
                return (string?)p[1] == Password ? Session : throw new XenApiException(ErrorCodes.SessionAuthenticationFailed, (string)p[0]!, "Authentication failure");
            case "session.logout":
                return null;
        }

        var dot = method.IndexOf('.', StringComparison.Ordinal);
        var cls = method[..dot];
        var call = method[(dot + 1)..];
        var records = _records.GetValueOrDefault(cls);
        if (records is null && !XenClassesKnown(cls))
        {
            throw new XenApiException(ErrorCodes.MessageMethodUnknown, method);
        }

        records ??= [];
        switch (call)
        {
            case "get_all_records":
                return records.ToDictionary(kv => kv.Key, kv => (object?)kv.Value);
            case "get_all":
                return records.Keys.Select(k => (object?)k).ToList();
            case "get_by_uuid":
                return records.FirstOrDefault(kv => (string?)kv.Value.GetValueOrDefault("uuid") == (string?)p[1]).Key
                       ?? throw new XenApiException(ErrorCodes.UuidInvalid, cls, (string)p[1]!);
            case "get_by_name_label":
                return records.Where(kv => (string?)kv.Value.GetValueOrDefault("name_label") == (string?)p[1]).Select(kv => (object?)kv.Key).ToList();
            case "get_record":
                return records.TryGetValue((string)p[1]!, out var r) ? r : throw new XenApiException(ErrorCodes.HandleInvalid, cls, (string)p[1]!);
        }

        if (call.StartsWith("get_", StringComparison.Ordinal) && (XenClasses.Find(cls)?.Find(call[4..]) is not null || records.Values.Any(r => r.ContainsKey(call[4..]))))
        {
            return records.TryGetValue((string)p[1]!, out var r)
                ? r.GetValueOrDefault(call[4..]) ?? Default(cls, call[4..])
                : throw new XenApiException(ErrorCodes.HandleInvalid, cls, (string)p[1]!);
        }

        throw new XenApiException(ErrorCodes.MessageMethodUnknown, method);
    }

    private static bool XenClassesKnown(string cls) => XenClasses.Find(cls) is not null;

    private static object? Default(string cls, string field) => XenClasses.Find(cls)?.Find(field)?.NewDefault() switch
    {
        DateTime dt => XenDateTime.Format(dt),
        var v => v,
    };

    /// <summary>Runs xe with this pool behind it (password "secret", no ~/.xe); returns exit code, stdout, stderr.</summary>
    public Task<(int Code, string Out, string Err)> RunAsync(params string[] args) => RunWithInputAsync("", args);

    public async Task<(int Code, string Out, string Err)> RunWithInputAsync(string input, params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var app = new XeApplication(stdout, stderr, new StringReader(input), _ => this, name => name switch
        {
            "HOME" => "/nonexistent-home-for-tests",
            _ => null,
        })
        {
            Registry = Registry ?? CommandRegistry.CreateDefault(),
        };
        var code = await app.RunAsync(["-pw", "secret", .. args], CancellationToken.None);
        return (code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>A small pool: one host, two VMs (one running with guest metrics), a template, an SR with a disk, a network.</summary>
    public static CannedPool Standard()
    {
        var pool = new CannedPool();
        pool.Add("pool", "OpaqueRef:pool", new()
        {
            ["uuid"] = "p-1", ["name_label"] = "Corral", ["name_description"] = "", ["master"] = "OpaqueRef:h1", ["default_SR"] = "OpaqueRef:sr1",
        });
        pool.Add("host", "OpaqueRef:h1", new()
        {
            ["uuid"] = "h-1", ["name_label"] = "lab-host1", ["name_description"] = "Default install", ["hostname"] = "lab1",
            ["metrics"] = "OpaqueRef:hm1", ["enabled"] = true, ["resident_VMs"] = new List<object?> { "OpaqueRef:vm1" },
            ["other_config"] = new Dictionary<string, object?> { ["corral-accelerator"] = "tcg" },
        });
        pool.Add("host_metrics", "OpaqueRef:hm1", new()
        {
            ["uuid"] = "hm-1", ["live"] = true, ["memory_total"] = 4294967296L, ["memory_free"] = 3221225472L,
        });
        pool.Add("VM", "OpaqueRef:vm1", new()
        {
            ["uuid"] = "v-1", ["name_label"] = "web", ["name_description"] = "", ["power_state"] = "Running", ["is_a_template"] = false,
            ["is_control_domain"] = false, ["resident_on"] = "OpaqueRef:h1", ["metrics"] = "OpaqueRef:vm1m", ["guest_metrics"] = "OpaqueRef:vm1g",
            ["VBDs"] = new List<object?> { "OpaqueRef:vbd1", "OpaqueRef:vbd2" }, ["VIFs"] = new List<object?> { "OpaqueRef:vif1" },
            ["other_config"] = new Dictionary<string, object?>(), ["xenstore_data"] = new Dictionary<string, object?> { ["vm-data/ip"] = "10.0.0.5/24" },
            ["memory_static_max"] = 268435456L, ["tags"] = new List<object?> { "a", "b" }, ["allowed_operations"] = new List<object?> { "clean_shutdown", "data_source_op" },
        });
        pool.Add("VM", "OpaqueRef:vm2", new()
        {
            ["uuid"] = "v-2", ["name_label"] = "db, primary", ["name_description"] = "", ["power_state"] = "Halted", ["is_a_template"] = false,
            ["is_control_domain"] = false, ["resident_on"] = "OpaqueRef:NULL", ["metrics"] = "OpaqueRef:NULL", ["guest_metrics"] = "OpaqueRef:NULL",
            ["VBDs"] = new List<object?>(), ["VIFs"] = new List<object?>(),
        });
        pool.Add("VM", "OpaqueRef:t1", new()
        {
            ["uuid"] = "t-1", ["name_label"] = "Corral Linux test", ["name_description"] = "A template", ["power_state"] = "Halted",
            ["is_a_template"] = true, ["is_a_snapshot"] = false, ["is_control_domain"] = false, ["suspend_SR"] = "OpaqueRef:NULL",
            ["other_config"] = new Dictionary<string, object?>(),
        });
        pool.Add("VM_metrics", "OpaqueRef:vm1m", new() { ["uuid"] = "vm1m", ["memory_actual"] = 268435456L, ["VCPUs_number"] = 1L });
        pool.Add("VM_guest_metrics", "OpaqueRef:vm1g", new()
        {
            ["uuid"] = "vm1g", ["networks"] = new Dictionary<string, object?> { ["0/ip"] = "10.0.0.5", ["0/ipv4/0"] = "10.0.0.5" },
            ["PV_drivers_version"] = new Dictionary<string, object?> { ["major"] = "1", ["minor"] = "0" }, ["PV_drivers_detected"] = true,
            ["os_version"] = new Dictionary<string, object?> { ["name"] = "Corral guest" },
        });
        pool.Add("SR", "OpaqueRef:sr1", new()
        {
            ["uuid"] = "s-1", ["name_label"] = "Local storage", ["name_description"] = "", ["type"] = "file", ["content_type"] = "user",
            ["PBDs"] = new List<object?> { "OpaqueRef:pbd1" }, ["VDIs"] = new List<object?> { "OpaqueRef:vdi1" }, ["shared"] = false,
        });
        pool.Add("SR", "OpaqueRef:iso", new()
        {
            ["uuid"] = "s-iso", ["name_label"] = "ISOs", ["name_description"] = "", ["type"] = "iso", ["content_type"] = "iso",
            ["PBDs"] = new List<object?> { "OpaqueRef:pbd2", "OpaqueRef:pbd3" }, ["VDIs"] = new List<object?> { "OpaqueRef:cd1" }, ["shared"] = true,
        });
        pool.Add("PBD", "OpaqueRef:pbd1", new() { ["uuid"] = "pbd-1", ["host"] = "OpaqueRef:h1", ["SR"] = "OpaqueRef:sr1", ["currently_attached"] = true });
        pool.Add("VDI", "OpaqueRef:vdi1", new()
        {
            ["uuid"] = "d-1", ["name_label"] = "web disk", ["name_description"] = "", ["SR"] = "OpaqueRef:sr1", ["virtual_size"] = 1073741824L,
            ["type"] = "user", ["VBDs"] = new List<object?> { "OpaqueRef:vbd1" },
        });
        pool.Add("VDI", "OpaqueRef:cd1", new()
        {
            ["uuid"] = "d-cd", ["name_label"] = "tools.iso", ["name_description"] = "", ["SR"] = "OpaqueRef:iso", ["virtual_size"] = 1024L, ["type"] = "user",
        });
        pool.Add("VBD", "OpaqueRef:vbd1", new()
        {
            ["uuid"] = "b-1", ["VM"] = "OpaqueRef:vm1", ["VDI"] = "OpaqueRef:vdi1", ["userdevice"] = "0", ["device"] = "vda", ["type"] = "Disk",
            ["mode"] = "RW", ["empty"] = false, ["other_config"] = new Dictionary<string, object?> { ["owner"] = "" },
        });
        pool.Add("VBD", "OpaqueRef:vbd2", new()
        {
            ["uuid"] = "b-2", ["VM"] = "OpaqueRef:vm1", ["VDI"] = "OpaqueRef:NULL", ["userdevice"] = "3", ["device"] = "hdd", ["type"] = "CD",
            ["mode"] = "RO", ["empty"] = true,
        });
        pool.Add("network", "OpaqueRef:net1", new()
        {
            ["uuid"] = "n-1", ["name_label"] = "Pool-wide network", ["name_description"] = "", ["bridge"] = "xenbr0", ["MTU"] = 1500L,
        });
        pool.Add("VIF", "OpaqueRef:vif1", new()
        {
            ["uuid"] = "i-1", ["VM"] = "OpaqueRef:vm1", ["network"] = "OpaqueRef:net1", ["device"] = "0", ["MAC"] = "02:00:00:00:00:01",
        });
        return pool;
    }

    /// <summary>The record of a class in the canned pool, for tests of record logic.</summary>
    public XenRecord Record(string cls, string reference) => new(cls, reference, _records[cls][reference]);

    public PoolCache Cache()
    {
        var cache = new PoolCache();
        foreach (var (cls, records) in _records)
        {
            cache.Seed(cls, records.Select(kv => new XenRecord(cls, kv.Key, kv.Value)));
        }

        return cache;
    }
}
