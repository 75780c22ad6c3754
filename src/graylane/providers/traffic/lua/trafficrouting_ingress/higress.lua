-- graylane: canary Ingress annotations for Higress, which reads ingress-nginx's canary annotations.
-- Same contract and behaviour as nginx.lua: obj.annotations, obj.weight ("-1": none), obj.matches in;
-- the canary Ingress' annotations out. One header (or cookie) per match; later matches win.
local nginx = "nginx.ingress.kubernetes.io/"
local out = {}
for key, value in pairs(obj.annotations or {}) do
  out[key] = value
end

out[nginx .. "canary"] = "true"
local managed = { "canary-by-cookie", "canary-by-header", "canary-by-header-pattern",
                  "canary-by-header-value", "canary-weight" }
for i = 1, #managed do
  out[nginx .. managed[i]] = nil
end

if obj.weight and obj.weight ~= "-1" then
  out[nginx .. "canary-weight"] = obj.weight
end

local function route_header(header)
  if header.name == "canary-by-cookie" then
    out[nginx .. "canary-by-cookie"] = header.value
    return
  end
  out[nginx .. "canary-by-header"] = header.name
  local kind = header.type == "RegularExpression" and "canary-by-header-pattern" or "canary-by-header-value"
  out[nginx .. kind] = header.value
end

if obj.matches then
  for _, match in ipairs(obj.matches) do
    if match.headers and match.headers[1] then
      route_header(match.headers[1])
    end
  end
end

return out
