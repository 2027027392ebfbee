using System.Diagnostics;
using Corral.Platform;

namespace Corral.Hypervisor.Qemu.Tests.Infrastructure;

/// <summary>
/// The project's test guest images (guest/build-image.sh). Another process may be building them when the tests start, so
/// the tests wait a few minutes for them; if they never appear, the tests build a private copy with the project's script.
/// </summary>
public static class GuestImages
{
    public const string TestImageName = "corral-linux-test.qcow2";
    public const string NotoolsImageName = "corral-linux-notools.qcow2";

    private static readonly TimeSpan WaitForOtherBuilder = TimeSpan.FromMinutes(4);
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static string? _directory;

    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    public static string BuildScript => Path.Combine(RepositoryRoot, "guest", "build-image.sh");

    public static string DefaultDirectory => Environment.GetEnvironmentVariable("CORRAL_GUEST_DIR") is { Length: > 0 } dir
        ? dir
        : Path.Combine(RepositoryRoot, "guest", "build");

    /// <summary>Null when the images can be had (present, or a build script to make them); otherwise why not.</summary>
    public static string? UnavailableReason()
    {
        if (!QemuAvailability.HasQemu)
        {
            return QemuAvailability.Reason;
        }

        if (File.Exists(Path.Combine(DefaultDirectory, TestImageName)) && File.Exists(Path.Combine(DefaultDirectory, NotoolsImageName)))
        {
            return null;
        }

        return File.Exists(BuildScript)
            ? null
            : $"no guest images in {DefaultDirectory} and no {BuildScript} to build them";
    }

    /// <summary>The directory holding both images: waits for a concurrent build, else builds a private copy.</summary>
    public static async Task<string> EnsureAsync()
    {
        await Gate.WaitAsync();
        try
        {
            if (_directory is not null)
            {
                return _directory;
            }

            var deadline = Stopwatch.StartNew();
            while (!BothIn(DefaultDirectory) && deadline.Elapsed < WaitForOtherBuilder)
            {
                await Task.Delay(TimeSpan.FromSeconds(5));
            }

            if (BothIn(DefaultDirectory))
            {
                return _directory = DefaultDirectory;
            }

            var privateCopy = Path.Combine(Path.GetTempPath(), "corral-qemu-tests-guest");
            var info = new ProcessStartInfo("bash") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            info.ArgumentList.Add(BuildScript);
            info.Environment["CORRAL_GUEST_DIR"] = privateCopy;
            using var build = Process.Start(info)!;
            var stderr = build.StandardError.ReadToEndAsync();
            _ = build.StandardOutput.ReadToEndAsync();
            await build.WaitForExitAsync();
            if (build.ExitCode != 0 || !BothIn(privateCopy))
            {
                throw new InvalidOperationException($"{BuildScript} failed ({build.ExitCode}): {await stderr}");
            }

            return _directory = privateCopy;
        }
        finally
        {
            Gate.Release();
        }
    }

    private static bool BothIn(string directory) =>
        File.Exists(Path.Combine(directory, TestImageName)) && File.Exists(Path.Combine(directory, NotoolsImageName));

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Corral.slnx")))
            {
                return dir.FullName;
            }
        }

        return Directory.GetCurrentDirectory();
    }
}

/// <summary>Whether QEMU and qemu-img are installed.</summary>
public static class QemuAvailability
{
    private static readonly Lazy<string?> Missing = new(() =>
    {
        foreach (var tool in new[] { "qemu-system-x86_64", "qemu-img" })
        {
            var found = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
                .Any(dir => dir.Length > 0 && File.Exists(Path.Combine(dir, tool)));
            if (!found)
            {
                return $"{tool} is not installed (Debian: apt-get install qemu-system-x86 qemu-utils)";
            }
        }

        return null;
    });

    public static bool HasQemu => Missing.Value is null;

    public static string? Reason => Missing.Value;

    public static Task CreateOverlayAsync(string baseImage, string overlay) =>
        CommandRunner.RunCheckedAsync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", baseImage, "-F", "qcow2", overlay], CancellationToken.None);
}
