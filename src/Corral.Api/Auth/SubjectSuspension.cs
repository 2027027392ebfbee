namespace Corral.Api.Auth;

/// <summary>Whether an external subject is suspended, as xapi's <c>is_subject_suspended</c> reads a directory's subject information.</summary>
public static class SubjectSuspension
{
    private static readonly string[] Fields = ["subject-account-disabled", "subject-account-locked", "subject-account-expired", "subject-password-expired"];

    /// <summary>
    /// Why the subject is suspended, or null when it is not: any of the four fields not "false", a missing one included
    /// (xapi assumes the worst), or no information at all (the subject is gone from the directory).
    /// </summary>
    public static string? Of(IReadOnlyDictionary<string, string>? information)
    {
        if (information is null)
        {
            return "not found in the directory";
        }

        var reasons = Fields
            .Where(field => !information.TryGetValue(field, out var value) || !value.Equals("false", StringComparison.OrdinalIgnoreCase))
            .Select(field => field["subject-".Length..].Replace('-', ' '))
            .ToList();
        return reasons.Count == 0 ? null : string.Join(", ", reasons);
    }
}
