using System.ComponentModel.DataAnnotations;

namespace Envio.Tests.DataObjects.Other;

/// <summary>A Party of another namespace (see <see cref="Receipt"/>).</summary>
public sealed record Party
{
    [MaxLength(10)]
    public required string Code { get; init; }
}
