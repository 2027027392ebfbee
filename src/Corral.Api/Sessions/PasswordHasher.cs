using System.Security.Cryptography;
using System.Text;

namespace Corral.Api.Sessions;

/// <summary>
/// PBKDF2-SHA256 password hashes, stored as <c>pbkdf2-sha256$iterations$salt$hash</c> (base64). New hashes take
/// OWASP's figure (600,000 iterations, <see cref="ApiOptions.PasswordHashIterations"/>); a hash with fewer is still
/// verified, and replaced at the user's next login (<see cref="NeedsRehash"/>).
/// </summary>
public static class PasswordHasher
{
    /// <summary>OWASP's Password Storage Cheat Sheet figure for PBKDF2-HMAC-SHA256.</summary>
    public const int RecommendedIterations = 600_000;

    public static string Hash(string password, int iterations = RecommendedIterations)
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        var hash = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, 32);
        return $"pbkdf2-sha256${iterations}${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}";
    }

    public static bool Verify(string password, string stored)
    {
        if (Parse(stored) is not { } parts)
        {
            return false;
        }

        var actual = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), parts.Salt, parts.Iterations, HashAlgorithmName.SHA256, parts.Hash.Length);
        return CryptographicOperations.FixedTimeEquals(actual, parts.Hash);
    }

    /// <summary>Whether a stored hash is weaker than new ones are made (fewer iterations, or not one of ours).</summary>
    public static bool NeedsRehash(string stored, int iterations) => Parse(stored) is not { } parts || parts.Iterations < iterations;

    private static (int Iterations, byte[] Salt, byte[] Hash)? Parse(string stored)
    {
        var parts = stored.Split('$');
        if (parts.Length != 4 || parts[0] != "pbkdf2-sha256" || !int.TryParse(parts[1], out var iterations) || iterations < 1)
        {
            return null;
        }

        try
        {
            return (iterations, Convert.FromBase64String(parts[2]), Convert.FromBase64String(parts[3]));
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
