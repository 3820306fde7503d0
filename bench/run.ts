/** `npm run bench`: the serving benchmark (bench/serving.ts), whose table tracks the serving goals. */
import './serving';
