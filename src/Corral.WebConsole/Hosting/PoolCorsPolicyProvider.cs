using Microsoft.AspNetCore.Cors.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace Corral.WebConsole.Hosting;

/// <summary>One CORS policy for every endpoint: pages from the pool's own hosts may call the API, with no cookies involved.</summary>
internal sealed class PoolCorsPolicyProvider(PoolHostOrigins origins) : ICorsPolicyProvider
{
    private readonly CorsPolicy _policy = new CorsPolicyBuilder()
        .SetIsOriginAllowed(origins.IsAllowed)
        .WithMethods("GET", "POST")
        .WithHeaders("Content-Type")
        .Build();

    public Task<CorsPolicy?> GetPolicyAsync(HttpContext context, string? policyName) => Task.FromResult<CorsPolicy?>(_policy);
}
