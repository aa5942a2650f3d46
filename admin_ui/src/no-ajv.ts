// @rjsf/core's test helper (getTestRegistry) imports @rjsf/validator-ajv8; the app never calls it,
// and ajv compiles with `new Function`, which the page's CSP forbids. vite.config.ts points the
// import here, so ajv stays out of the bundle. See src/validation.ts for the validator in use.
const refused = () => {
  throw new Error("ajv is not part of djflow's web app: use src/validation.ts");
};
export default refused;
export const customizeValidator = refused;
