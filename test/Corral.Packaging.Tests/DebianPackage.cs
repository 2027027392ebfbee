namespace Corral.Packaging.Tests;

/// <summary>
/// Corral's Debian package, built once for the test run by <c>packaging/build-deb</c> and unpacked (files and control
/// area) into a temporary root. The publish it packs: <c>CORRAL_DEB_PUBLISH</c> if set; the lab's build (<c>.build</c>,
/// self-contained as the package's) when <c>CORRAL_LAB_BUILT=1</c> says it is current, as in run-tests; otherwise
/// build-deb publishes first (minutes).
/// </summary>
public sealed class DebianPackage : IAsyncLifetime
{
    private readonly string _work = Directory.CreateTempSubdirectory("corral-deb-test.").FullName;

    public static string Repository { get; } = FindRepository();

    /// <summary>The .deb built.</summary>
    public string Deb { get; private set; } = "";

    /// <summary>The package unpacked (<c>dpkg-deb -R</c>): its files, and its control area in DEBIAN/.</summary>
    public string Root => Path.Combine(_work, "root");

    public string Work => _work;

    /// <summary>Corral's version, from the one place it is kept.</summary>
    public static string RepositoryVersion()
    {
        var props = File.ReadAllText(Path.Combine(Repository, "Directory.Build.props"));
        var start = props.IndexOf("<VersionPrefix>", StringComparison.Ordinal) + "<VersionPrefix>".Length;
        return props[start..props.IndexOf("</VersionPrefix>", StringComparison.Ordinal)];
    }

    public async Task InitializeAsync()
    {
        var args = new List<string> { "--out", _work, "--compress", "zstd" };
        var publish = Environment.GetEnvironmentVariable("CORRAL_DEB_PUBLISH");
        if (string.IsNullOrEmpty(publish) && Environment.GetEnvironmentVariable("CORRAL_LAB_BUILT") == "1")
        {
            publish = Path.Combine(Repository, ".build");
        }

        if (!string.IsNullOrEmpty(publish))
        {
            args.AddRange(["--publish", publish]);
        }

        var (code, output) = await Processes.RunAsync(Path.Combine(Repository, "packaging", "build-deb"), args, timeout: TimeSpan.FromMinutes(20));
        Assert.True(code == 0, $"packaging/build-deb failed:\n{output}");
        Deb = output.Split('\n').Select(l => l.Trim()).Last(l => l.EndsWith(".deb", StringComparison.Ordinal) && File.Exists(l));
        (code, output) = await Processes.RunAsync("dpkg-deb", ["-R", Deb, Root]);
        Assert.True(code == 0, $"dpkg-deb -R failed:\n{output}");
    }

    public Task DisposeAsync()
    {
        Directory.Delete(_work, recursive: true);
        return Task.CompletedTask;
    }

    /// <summary>An environment file as systemd reads one (EnvironmentFile=): NAME=VALUE lines; # and ; start comments.</summary>
    public static Dictionary<string, string> ReadEnvironmentFile(string path) =>
        File.ReadAllLines(path)
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && l[0] is not ('#' or ';'))
            .Select(l => l.Split('=', 2))
            .ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "", StringComparer.Ordinal);

    private static string FindRepository()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Corral.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"no Corral.slnx above {AppContext.BaseDirectory}");
    }
}
