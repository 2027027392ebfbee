using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Corral.Hypervisor.Qemu;

public static class QemuServiceCollectionExtensions
{
    /// <summary>Registers <see cref="QemuHypervisor"/> as this host's <see cref="IHypervisor"/> (one per agent), with its options.</summary>
    public static IServiceCollection AddQemuHypervisor(this IServiceCollection services, Action<QemuOptions>? configure = null)
    {
        var options = services.AddOptions<QemuOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.Validate(o => !string.IsNullOrWhiteSpace(o.QemuBinary), "Corral:Qemu:QemuBinary is empty")
            .Validate(o => !string.IsNullOrWhiteSpace(o.RuntimeDirectory), "Corral:Qemu:RuntimeDirectory is empty")
            .Validate(o => !string.IsNullOrWhiteSpace(o.StateDirectory), "Corral:Qemu:StateDirectory is empty")
            .Validate(o => o.ForceAccelerator is null or "" or "kvm" or "tcg", "Corral:Qemu:ForceAccelerator must be kvm, tcg or empty")
            .Validate(o => o.DiskCache is "auto" or "none" or "writeback", "Corral:Qemu:DiskCache must be auto, none or writeback")
            .Validate(o => o.ProbeTimeout > TimeSpan.Zero && o.StartTimeout > TimeSpan.Zero, "Corral:Qemu timeouts must be positive")
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<QemuOptions>, QemuOptionsValidation>();

        services.TryAddSingleton<QemuHypervisor>();
        services.TryAddSingleton<IHypervisor>(sp => sp.GetRequiredService<QemuHypervisor>());
        return services;
    }
}

/// <summary>The limits a guest's output is held to (<see cref="QemuOptions.Problems"/>), each problem naming its setting.</summary>
public sealed class QemuOptionsValidation : IValidateOptions<QemuOptions>
{
    public ValidateOptionsResult Validate(string? name, QemuOptions options) =>
        options.Problems() is { Count: > 0 } problems ? ValidateOptionsResult.Fail(problems) : ValidateOptionsResult.Success;
}
