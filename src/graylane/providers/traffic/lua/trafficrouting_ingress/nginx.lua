-- graylane: canary Ingress annotations for ingress-nginx (Kruise Rollout's Lua contract).
--
-- Input  obj.annotations            the canary Ingress' current annotations (a copy; may be nil)
--        obj.weight                 canary weight as a string, "-1" when the step sets none
--        obj.matches                the step's matches (headers / queryParams / path), or nil
--        obj.canaryService, obj.stableService, obj.requestHeaderModifier
-- Output the canary Ingress' annotations.
--
-- ingress-nginx routes a canary by one header (exact value or pattern), one cookie and a weight, so
-- each match contributes its first header only; a header named "canary-by-cookie" means a cookie.
-- Later matches overwrite earlier ones. Query parameters and paths cannot be expressed here.
local prefix = "nginx.ingress.kubernetes.io/"
local result = {}
for key, value in pairs(obj.annotations or {}) do
  result[key] = value
end

result[prefix .. "canary"] = "true"
for _, name in ipairs({ "canary-by-cookie", "canary-by-header", "canary-by-header-pattern",
                        "canary-by-header-value", "canary-weight" }) do
  result[prefix .. name] = nil
end

if obj.weight ~= nil and obj.weight ~= "-1" then
  result[prefix .. "canary-weight"] = obj.weight
end

for _, match in ipairs(obj.matches or {}) do
  local header = (match.headers or {})[1]
  if header ~= nil then
    if header.name == "canary-by-cookie" then
      result[prefix .. "canary-by-cookie"] = header.value
    else
      result[prefix .. "canary-by-header"] = header.name
      if header.type == "RegularExpression" then
        result[prefix .. "canary-by-header-pattern"] = header.value
      else
        result[prefix .. "canary-by-header-value"] = header.value
      end
    end
  end
end

return result
