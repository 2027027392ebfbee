using System.Net;
using Microsoft.Extensions.Options;

namespace Corral.Api.Https;

/// <summary>
/// Where the host serves the XenAPI (configuration section <c>Corral:Https</c>): HTTPS with the host's own certificate,
/// as XenServer serves clients on 443, and plain HTTP on 80 as xapi allows it (closed by <c>host.https_only</c>).
/// </summary>
public sealed class HttpsOptions
{
    public const string Section = "Corral:Https";

    /// <summary>The name of the certificate file in the host's state directory when no path is configured.</summary>
    public const string DefaultCertificateFile = "xapi-ssl.pem";

    /// <summary>The address to listen on: <c>*</c> for every address of the host (IPv4 and IPv6), or one IP address.</summary>
    public string ListenAddress { get; set; } = "*";

    /// <summary>Plain HTTP (XenServer's 80). 0 takes any free port (tests).</summary>
    public int HttpPort { get; set; } = 80;

    /// <summary>HTTPS (XenServer's 443). 0 takes any free port (tests).</summary>
    public int HttpsPort { get; set; } = 443;

    /// <summary>
    /// The host's server certificate: its private key and certificate in one PEM file, as xapi keeps
    /// <c>/etc/xensource/xapi-ssl.pem</c>. Made at first start if missing. Empty: <c>xapi-ssl.pem</c> in the agent's
    /// state directory.
    /// </summary>
    public string CertificatePath { get; set; } = "";

    /// <summary>How long a certificate made here is valid: ten years, as XenServer's.</summary>
    public int CertificateValidityDays { get; set; } = 3650;

    /// <summary>The certificate's path, with the state directory's default filled in.</summary>
    public string CertificatePathIn(string stateDirectory) =>
        CertificatePath.Length > 0 ? CertificatePath : Path.Combine(stateDirectory, DefaultCertificateFile);

    /// <summary>What is wrong with these settings; empty when nothing.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (HttpPort is < 0 or > 65535)
        {
            problems.Add($"{Section}:HttpPort must be a port number (0-65535), not {HttpPort}");
        }

        if (HttpsPort is < 0 or > 65535)
        {
            problems.Add($"{Section}:HttpsPort must be a port number (0-65535), not {HttpsPort}");
        }

        if (HttpPort == HttpsPort && HttpPort != 0)
        {
            problems.Add($"{Section}:HttpPort and {Section}:HttpsPort must differ (both are {HttpPort})");
        }

        if (ListenAddress != "*" && !IPAddress.TryParse(ListenAddress, out _))
        {
            problems.Add($"{Section}:ListenAddress must be * or an IP address, not '{ListenAddress}'");
        }

        if (CertificateValidityDays is < 1 or > 36500)
        {
            problems.Add($"{Section}:CertificateValidityDays must be between 1 and 36500, not {CertificateValidityDays}");
        }

        return problems;
    }

    /// <summary>Throws <see cref="OptionsValidationException"/> listing every problem, if there is any.</summary>
    public void Validate()
    {
        var problems = Problems();
        if (problems.Count > 0)
        {
            throw new OptionsValidationException(Section, typeof(HttpsOptions), problems);
        }
    }
}

/// <summary>The same checks for the options as the container hands them out (validated at start).</summary>
public sealed class HttpsOptionsValidator : IValidateOptions<HttpsOptions>
{
    public ValidateOptionsResult Validate(string? name, HttpsOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.Problems();
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
