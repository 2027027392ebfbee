using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Corral.HighAvailability;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Corral.FenceDaemon;

/// <summary>
/// The host's watchdog, as Linux's watchdog API has it: opening the device arms it, each write pets it, the
/// timeout is set with <c>WDIOC_SETTIMEOUT</c>, and writing <c>V</c> before closing disarms it (the "magic close").
/// When nothing pets it for its timeout, the machine is reset. The lab's emulated watchdog is a FIFO that the lab
/// reads the same way; it takes no ioctl, so the timeout is also written as a line it understands (a real device
/// counts that line as one more pet).
/// </summary>
public sealed partial class Watchdog(IOptions<FenceOptions> options, ILogger<Watchdog> logger) : IDisposable
{
    private const int Enotty = 25;
    private static readonly nuint WdiocSetTimeout = 0xC0045706; // _IOWR('W', 6, int)
    private static readonly byte[] PetBytes = "p\n"u8.ToArray();
    private static readonly byte[] MagicClose = "V\n"u8.ToArray();

    private FileStream? _device;

    public bool Armed => _device is not null;

    /// <summary>Opens (arms) the watchdog with this timeout, if it is not armed yet.</summary>
    public void Arm(TimeSpan timeout)
    {
        if (_device is not null)
        {
            return;
        }

        var path = options.Value.WatchdogDevice;
        var device = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
        var seconds = (int)timeout.TotalSeconds;
        var fd = (int)device.SafeFileHandle.DangerousGetHandle();
        if (SetTimeout(fd, WdiocSetTimeout, ref seconds) != 0)
        {
            var error = Marshal.GetLastPInvokeError();
            if (error != Enotty)
            {
                device.Dispose();
                throw new IOException($"The watchdog {path} refused a timeout of {timeout.TotalSeconds} s: {Marshal.GetPInvokeErrorMessage(error)}");
            }

            // Not a watchdog device: the lab's, which reads its timeout from the stream.
            device.Write(Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"timeout {seconds}\n")));
        }

        _device = device;
        logger.LogWarning(HaEvents.WatchdogArmed, "Watchdog {Device} armed: the host is reset if the fence stops petting it for {Seconds} s", path, seconds);
    }

    public void Pet() => _device?.Write(PetBytes);

    /// <summary>The magic close: the watchdog stops counting (HA turned off, or the daemon stopped cleanly).</summary>
    public void Disarm()
    {
        if (_device is not { } device)
        {
            return;
        }

        try
        {
            device.Write(MagicClose);
        }
        finally
        {
            device.Dispose();
            _device = null;
        }

        logger.LogInformation(HaEvents.WatchdogDisarmed, "Watchdog {Device} disarmed", options.Value.WatchdogDevice);
    }

    public void Dispose() => _device?.Dispose();

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int SetTimeout(int fd, nuint request, ref int seconds);
}
