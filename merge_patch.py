"""JSON merge patch (RFC 7396), the semantics of PATCH."""


def merge_patch(target, patch):
    """Objects merge member by member, null removes a member, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged
