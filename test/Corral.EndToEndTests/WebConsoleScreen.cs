using Corral.EndToEndTests.Screens;

namespace Corral.EndToEndTests;

/// <summary>A lab VM's screen, as a browser showing a pool host's web console page opens it (<see cref="WebConsoleViewer"/>).</summary>
internal static class WebConsoleScreen
{
    /// <summary>Logs in at <paramref name="pageHost"/> (the host whose page the browser shows) and opens the VM's screen.</summary>
    public static async Task<RfbClient> OpenAsync(string pageHost, string password, string vmUuid, CancellationToken cancellationToken)
    {
        var page = new Uri($"http://{pageHost}/console/");
        using var api = new JsonRpcClient(page);
        await api.LoginAsync("root", password);
        var vm = (await api.CallWithSessionAsync("VM.get_by_uuid", vmUuid)).GetString()!;
        var location = await JsonRpcClient.EventuallyAsync(async () =>
        {
            foreach (var console in (await api.CallWithSessionAsync("VM.get_consoles", vm)).EnumerateArray())
            {
                var record = await api.CallWithSessionAsync("console.get_record", console.GetString());
                if (record.GetProperty("protocol").GetString() == "rfb")
                {
                    return record.GetProperty("location").GetString();
                }
            }

            return null;
        }, TimeSpan.FromSeconds(60), $"VM {vmUuid}'s rfb console");
        return await WebConsoleViewer.OpenAsync(location, page, api.Session, cancellationToken);
    }
}
