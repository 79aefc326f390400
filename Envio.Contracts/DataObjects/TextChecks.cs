using System.Buffers;
using System.Net.Mail;

namespace Envio.Contracts.DataObjects;

/// <summary>The checks of text that every data object's rules share.</summary>
public static class TextChecks
{
    /// <summary>What <see cref="char.IsControl(char)"/> says is one: U+0000–U+001F and U+007F–U+009F.</summary>
    private static readonly SearchValues<char> ControlCharacters = SearchValues.Create(
        [.. Enumerable.Range(0, 0x20).Concat(Enumerable.Range(0x7F, 0x21)).Select(c => (char)c)]);

    public static bool HasControlCharacters(string value) => value.AsSpan().ContainsAny(ControlCharacters);

    /// <summary>A plain address (<c>ana@example.com</c>, no display name), with a dot in it.</summary>
    public static bool IsEmail(string value) =>
        MailAddress.TryCreate(value, out var address) && address.Address == value && value.Contains('.', StringComparison.Ordinal);
}
